-- grain: one row per station and UTC quarter; the key is the grain, so a changed quarter replaces its row
{{ config(unique_key=['station_id', 'year', 'quarter'], meta={'product': 'cloud_cover'}) }}

{{ quarterly_features(
    'fct_hourly_cloud_cover',
    main_measure='cloud_cover_oktas',
    measures=['cloud_cover_oktas'],
    extra=[
        {'expression': 'count(case when cloud_cover_oktas >= 7 then 1 end)', 'name': 'overcast_hours'},
        {'expression': 'count(case when cloud_cover_oktas <= 1 then 1 end)', 'name': 'clear_hours'},
    ],
) }}
