with

source as (

    select * from {{ source('raw_dwd', 'air_temperature') }}

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
        {{ dwd_decimal('source.tt_tu') }} as temperature_c,
        {{ dwd_decimal('source.rf_tu') }} as relative_humidity_pct,

        {{ dwd_delivery_columns() }}
    from source
    -- the per-file facts are kept once per delivery, not on every raw row
    inner join deliveries on source.delivery_id = deliveries.delivery_id

),

final as (

    select * from renamed

)

select * from final
