-- grain: one row per station and UTC hour; the key is the grain, so a re-delivered hour replaces its row
{{ config(unique_key=['station_id', 'observed_at'], meta={'product': 'dew_point'}) }}

{{ hourly_fact('stg_dwd__dew_point_observations', measures=[
    'temperature_c',
    'dew_point_c',
]) }}
