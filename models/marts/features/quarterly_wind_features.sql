-- grain: one row per station and UTC quarter; the key is the grain, so a changed quarter replaces its row
{{ config(unique_key=['station_id', 'year', 'quarter'], meta={'product': 'wind'}) }}

{{ quarterly_features(
    'fct_hourly_wind',
    main_measure='wind_speed_ms',
    measures=['wind_speed_ms'],
    extra=[
        {'expression': 'count(case when wind_speed_ms >= 10.8 then 1 end)', 'name': 'strong_wind_hours'},
    ],
) }}
