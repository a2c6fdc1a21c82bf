with

source as (

    select * from {{ source('raw_dwd', 'moisture') }}

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
        {{ dwd_decimal('source.absf_std') }} as absolute_humidity_gm3,
        {{ dwd_decimal('source.vp_std') }} as vapour_pressure_hpa,
        {{ dwd_decimal('source.tf_std') }} as wet_bulb_temperature_c,
        {{ dwd_decimal('source.p_std') }} as pressure_station_hpa,
        {{ dwd_decimal('source.tt_std') }} as temperature_c,
        {{ dwd_decimal('source.rf_std') }} as relative_humidity_pct,
        {{ dwd_decimal('source.td_std') }} as dew_point_c,

        {{ dwd_delivery_columns() }}
    from source
    -- the per-file facts are kept once per delivery, not on every raw row
    inner join deliveries on source.delivery_id = deliveries.delivery_id

),

final as (

    select * from renamed

)

select * from final
