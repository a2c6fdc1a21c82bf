-- grain: one row per location and UTC day
{{ config(
    unique_key=['location_id', 'observed_date'],
    meta={'product': 'location_weather', 'window': {'column': 'observed_date', 'grain': 'day', 'key': 'location_id'}},
    indexes=[{'columns': ['location_id', 'observed_date'], 'unique': true}, {'columns': ['observed_date']}],
) }}
{%- set plan = change_plan() %}
{{ change_plan_marker(plan) }}
with

hours as (

    -- the hours of the days this build recomputes (whole UTC days)
    select hourly.* from {{ rows_in_scope(ref('fct_hourly_location_weather'), plan) }} as hourly

),

final as (

    select
        -- ids
        location_id,
        {{ utc_date('observed_at') }} as observed_date,

        -- coverage
        count(temperature_c) as observed_hours,

        -- measures
        avg(temperature_c) as temperature_c_mean,
        min(temperature_c) as temperature_c_min,
        max(temperature_c) as temperature_c_max,
        sum(precipitation_mm) as precipitation_mm_total,
        avg(relative_humidity_pct) as relative_humidity_pct_mean,
        avg(pressure_msl_hpa) as pressure_msl_hpa_mean,
        avg(cloud_cover_pct) as cloud_cover_pct_mean,
        avg(wind_speed_ms) as wind_speed_ms_mean,
        max(wind_gust_ms) as wind_gust_ms_max,

        -- lineage
        max(latest_load_id) as latest_load_id
    from hours
    group by location_id, {{ utc_date('observed_at') }}

)

select * from final
