-- grain: one row per station and UTC quarter; the key is the grain, so a changed quarter replaces its row
{{ config(unique_key=['station_id', 'year', 'quarter'], meta={'product': 'air_temperature'}) }}

{{ quarterly_features(
    'fct_hourly_air_temperature',
    main_measure='temperature_c',
    measures=['temperature_c', 'relative_humidity_pct'],
) }}
