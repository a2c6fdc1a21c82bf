-- grain: one row per station and UTC hour; the key is the grain, so a re-delivered hour replaces its row
{{ config(unique_key=['station_id', 'observed_at'], meta={'product': 'pressure'}) }}

{{ hourly_fact('stg_dwd__pressure_observations', measures=[
    'pressure_sea_level_hpa',
    'pressure_station_hpa',
]) }}
