-- grain: one row per location and UTC hour; the latest fetch of an hour wins (the reanalysis
-- revises its last days), so a refetched hour replaces its row
{{ config(
    unique_key=['location_id', 'observed_at'],
    meta={'product': 'location_weather', 'window': {'column': 'observed_at', 'grain': 'hour', 'key': 'location_id'}},
    indexes=[{'columns': ['location_id', 'observed_at'], 'unique': true}, {'columns': ['observed_at']}],
) }}

{{ hourly_fact(
    'stg_openmeteo__location_weather',
    measures=[
        'temperature_c',
        'relative_humidity_pct',
        'dew_point_c',
        'precipitation_mm',
        'surface_pressure_hpa',
        'pressure_msl_hpa',
        'cloud_cover_pct',
        'wind_speed_ms',
        'wind_direction_deg',
        'wind_gust_ms',
    ],
    precedence='fetched_at desc, load_id desc, request_id desc',
    carried=['request_id', 'fetched_at'],
) }}
