-- grain: one row per station and UTC hour; the key is the grain, so a re-delivered hour replaces its row
{{ config(unique_key=['station_id', 'observed_at'], meta={'product': 'wind'}) }}

{{ hourly_fact('stg_dwd__wind_observations', measures=[
    'wind_speed_ms',
    'wind_direction_deg',
    'is_wind_direction_variable',
]) }}
