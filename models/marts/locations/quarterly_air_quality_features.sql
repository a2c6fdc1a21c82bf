-- grain: one row per location and UTC quarter; the key is the grain, so a changed quarter replaces its row
{{ config(
    unique_key=['location_id', 'year', 'quarter'],
    meta={'product': 'air_quality', 'window': {'column': 'quarter_start_at', 'grain': 'quarter', 'key': 'location_id'}},
    indexes=[
        {'columns': ['location_id', 'quarter_start_at'], 'unique': true},
        {'columns': ['location_id', 'year', 'quarter'], 'unique': true},
        {'columns': ['quarter_start_at']},
    ],
) }}

{#- WHO 2021 guideline levels (μg/m³): 24-hour PM2.5 15, PM10 45, NO2 25; ozone 100 (8-hour) -#}
{%- set pollutants = [
    ('pm2_5_ugm3', 15),
    ('pm10_ugm3', 45),
    ('no2_ugm3', 25),
    ('o3_ugm3', 100),
    ('european_aqi', none),
] -%}
{%- set aggregates = [] -%}
{%- for column, guideline in pollutants -%}
    {%- do aggregates.append({'expression': 'avg(' ~ column ~ ')', 'name': column ~ '_mean'}) -%}
    {%- do aggregates.append({'expression': 'max(' ~ column ~ ')', 'name': column ~ '_max'}) -%}
    {%- do aggregates.append({
        'expression': 'percentile_disc(0.95) within group (order by ' ~ column ~ ')',
        'name': column ~ '_p95',
    }) -%}
    {%- if guideline is not none -%}
        {%- do aggregates.append({
            'expression': 'count(case when ' ~ column ~ ' > ' ~ guideline ~ ' then 1 end)',
            'name': column | replace('_ugm3', '') ~ '_hours_above_who',
        }) -%}
    {%- endif -%}
{%- endfor %}

{{ quarterly_features('fct_hourly_air_quality', main_measure='pm2_5_ugm3', measures=[], extra=aggregates) }}
