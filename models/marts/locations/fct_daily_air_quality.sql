-- grain: one row per location and UTC day
{{ config(
    unique_key=['location_id', 'observed_date'],
    meta={'product': 'air_quality', 'window': {'column': 'observed_date', 'grain': 'day', 'key': 'location_id'}},
    indexes=[{'columns': ['location_id', 'observed_date'], 'unique': true}, {'columns': ['observed_date']}],
) }}
{%- set plan = change_plan() %}
{{ change_plan_marker(plan) }}
with

hours as (

    -- the hours of the days this build recomputes (whole UTC days)
    select hourly.* from {{ rows_in_scope(ref('fct_hourly_air_quality'), plan) }} as hourly

),

daily as (

    select
        location_id,
        {{ utc_date('observed_at') }} as observed_date,
        count(pm2_5_ugm3) as observed_hours,
        avg(pm2_5_ugm3) as pm2_5_ugm3_mean,
        max(pm2_5_ugm3) as pm2_5_ugm3_max,
        avg(pm10_ugm3) as pm10_ugm3_mean,
        max(pm10_ugm3) as pm10_ugm3_max,
        avg(no2_ugm3) as no2_ugm3_mean,
        max(o3_ugm3) as o3_ugm3_max,
        max(european_aqi) as european_aqi_max,
        -- WHO 2021 24-hour guideline levels on the day's mean: PM2.5 15, PM10 45, NO2 25 μg/m³
        avg(pm2_5_ugm3) > 15 as pm2_5_above_who_24h,
        avg(pm10_ugm3) > 45 as pm10_above_who_24h,
        avg(no2_ugm3) > 25 as no2_above_who_24h,
        max(latest_load_id) as latest_load_id
    from hours
    group by location_id, {{ utc_date('observed_at') }}

),

final as (

    select
        -- ids
        location_id,
        observed_date,

        -- coverage
        observed_hours,

        -- measures
        pm2_5_ugm3_mean,
        pm2_5_ugm3_max,
        pm10_ugm3_mean,
        pm10_ugm3_max,
        no2_ugm3_mean,
        o3_ugm3_max,
        european_aqi_max,

        -- WHO guideline exceedance of the day's mean
        pm2_5_above_who_24h,
        pm10_above_who_24h,
        no2_above_who_24h,

        -- lineage
        latest_load_id
    from daily

)

select * from final
