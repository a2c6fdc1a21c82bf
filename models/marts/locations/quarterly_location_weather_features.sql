-- grain: one row per location and UTC quarter; the key is the grain, so a changed quarter replaces its row
{{ config(
    unique_key=['location_id', 'year', 'quarter'],
    meta={'product': 'location_weather', 'window': {'column': 'quarter_start_at', 'grain': 'quarter', 'key': 'location_id'}},
    indexes=[
        {'columns': ['location_id', 'quarter_start_at'], 'unique': true},
        {'columns': ['location_id', 'year', 'quarter'], 'unique': true},
        {'columns': ['quarter_start_at']},
    ],
) }}

{{ quarterly_features(
    'fct_hourly_location_weather',
    main_measure='temperature_c',
    measures=['temperature_c', 'relative_humidity_pct', 'wind_speed_ms'],
    extra=[
        {'expression': 'sum(precipitation_mm)', 'name': 'precipitation_mm_total'},
        {'expression': 'count(case when precipitation_mm > 0 then 1 end)', 'name': 'wet_hours'},
        {'expression': 'max(wind_gust_ms)', 'name': 'wind_gust_ms_max'},
        {'expression': 'avg(pressure_msl_hpa)', 'name': 'pressure_msl_hpa_mean'},
        {'expression': 'avg(cloud_cover_pct)', 'name': 'cloud_cover_pct_mean'},
    ],
) }}
