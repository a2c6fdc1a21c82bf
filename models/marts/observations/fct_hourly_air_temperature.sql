-- grain: one row per station and UTC hour; the key is the grain, so a re-delivered hour replaces its row
{{ config(unique_key=['station_id', 'observed_at'], meta={'product': 'air_temperature'}) }}

{{ hourly_fact('stg_dwd__air_temperature_observations', measures=[
    'temperature_c',
    'relative_humidity_pct',
]) }}
