-- grain: one row per station and UTC quarter; the key is the grain, so a changed quarter replaces its row
{{ config(unique_key=['station_id', 'year', 'quarter'], meta={'product': 'precipitation'}) }}

{{ quarterly_features(
    'fct_hourly_precipitation',
    main_measure='precipitation_mm',
    measures=[],
    extra=[
        {'expression': 'sum(precipitation_mm)', 'name': 'precipitation_mm_total'},
        {'expression': 'count(case when precipitation_mm > 0 then 1 end)', 'name': 'wet_hours'},
        {'expression': 'max(precipitation_mm)', 'name': 'precipitation_mm_max'},
        {'expression': 'avg(precipitation_mm)', 'name': 'precipitation_mm_mean'},
    ],
) }}
