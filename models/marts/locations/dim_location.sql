-- grain: one row per location of seeds/locations.csv
{{ config(materialized='table') }}

with

locations as (

    select * from {{ ref('locations') }}

),

final as (

    select
        -- ids
        location_id,
        dwd_station_id,

        -- attributes
        location_name,
        country_code,
        latitude,
        longitude,

        -- sources
        'weather' = any(string_to_array(apis, ';')) as has_weather,
        'air_quality' = any(string_to_array(apis, ';')) as has_air_quality
    from locations

)

select * from final
