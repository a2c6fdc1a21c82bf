with

source as (

    select * from {{ source('raw_dwd', 'pressure') }}

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
        {{ dwd_decimal('source.p') }} as pressure_sea_level_hpa,
        {{ dwd_decimal('source.p0') }} as pressure_station_hpa,

        {{ dwd_delivery_columns() }}
    from source
    -- the per-file facts are kept once per delivery, not on every raw row
    inner join deliveries on source.delivery_id = deliveries.delivery_id

),

final as (

    select * from renamed

)

select * from final
