with

source as (

    select * from {{ source('raw_dwd', 'wind') }}

),

renamed as (

    select
        -- ids
        station_id,
        observed_at,

        -- measures (DWD's -999 is already NULL in raw)
        {{ dwd_decimal('f') }} as wind_speed_ms,
        -- DWD codes a variable direction as 990: no degree, but worth keeping as a flag
        cast(case when d = 990 then null else d end as smallint) as wind_direction_deg,
        coalesce(d = 990, false) as is_wind_direction_variable,

        {{ dwd_delivery_columns() }}
    from source

),

final as (

    select * from renamed

)

select * from final
