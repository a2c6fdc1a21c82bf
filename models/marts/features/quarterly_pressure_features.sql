-- grain: one row per station and UTC quarter; the key is the grain, so a changed quarter replaces its row
{{ config(unique_key=['station_id', 'year', 'quarter'], meta={'product': 'pressure'}) }}

{{ quarterly_features(
    'fct_hourly_pressure',
    main_measure='pressure_sea_level_hpa',
    measures=['pressure_sea_level_hpa', 'pressure_station_hpa'],
) }}
