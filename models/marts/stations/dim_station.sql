-- grain: one row per station version (SCD2); filter on is_current for today's attributes
with

station_versions as (

    select * from {{ ref('snp_dwd_stations') }}

),

final as (

    select
        -- ids
        dbt_scd_id as station_version_id,
        station_id,

        -- attributes
        station_name,
        state,
        latitude,
        longitude,
        height_m,
        first_observed_on,
        last_observed_on,

        -- validity
        dbt_valid_from as valid_from,
        dbt_valid_to as valid_to,
        dbt_valid_to is null as is_current
    from station_versions

)

select * from final
