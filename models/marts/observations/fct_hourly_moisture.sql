-- grain: one row per station and UTC hour; the key is the grain, so a re-delivered hour replaces its row
{{ config(unique_key=['station_id', 'observed_at'], meta={'product': 'moisture'}) }}

{{ hourly_fact('stg_dwd__moisture_observations', measures=[
    'absolute_humidity_gm3',
    'vapour_pressure_hpa',
    'wet_bulb_temperature_c',
    'pressure_station_hpa',
    'temperature_c',
    'relative_humidity_pct',
    'dew_point_c',
]) }}
