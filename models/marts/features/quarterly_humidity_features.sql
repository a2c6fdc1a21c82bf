-- grain: one row per station and UTC quarter; the key is the grain, so a changed quarter replaces its row
{{ config(unique_key=['station_id', 'year', 'quarter'], meta={'product': 'moisture'}) }}

{{ quarterly_features(
    'fct_hourly_moisture',
    main_measure='relative_humidity_pct',
    measures=['relative_humidity_pct', 'absolute_humidity_gm3', 'vapour_pressure_hpa', 'dew_point_c'],
) }}
