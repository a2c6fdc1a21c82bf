with

source as (

    select * from {{ source('raw_dwd', 'wind') }}

),

deliveries as (

    select * from {{ source('raw_dwd', 'deliveries') }}

),

renamed as (

    select
        -- ids
        source.station_id,
        source.observed_at,

        -- measures (DWD's -999 is already NULL in raw)
        {{ dwd_decimal('source.f') }} as wind_speed_ms,
        -- DWD codes a variable direction as 990: no degree, but worth keeping as a flag
        cast(case when source.d = 990 then null else source.d end as smallint) as wind_direction_deg,
        coalesce(source.d = 990, false) as is_wind_direction_variable,

        {{ dwd_delivery_columns() }}
    from source
    -- the per-file facts are kept once per delivery, not on every raw row
    inner join deliveries on source.delivery_id = deliveries.delivery_id

),

final as (

    select * from renamed

)

select * from final
