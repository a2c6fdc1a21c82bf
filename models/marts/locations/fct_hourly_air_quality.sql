-- grain: one row per location and UTC hour; the latest fetch of an hour wins, so a refetched
-- hour replaces its row
{{ config(
    unique_key=['location_id', 'observed_at'],
    meta={'product': 'air_quality', 'window': {'column': 'observed_at', 'grain': 'hour', 'key': 'location_id'}},
    indexes=[{'columns': ['location_id', 'observed_at'], 'unique': true}, {'columns': ['observed_at']}],
) }}

{{ hourly_fact(
    'stg_openmeteo__air_quality',
    measures=['pm2_5_ugm3', 'pm10_ugm3', 'no2_ugm3', 'o3_ugm3', 'european_aqi'],
    precedence='fetched_at desc, load_id desc, request_id desc',
    carried=['request_id', 'fetched_at'],
) }}
