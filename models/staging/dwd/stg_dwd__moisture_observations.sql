with

source as (

    select * from {{ source('raw_dwd', 'moisture') }}

),

renamed as (

    select
        -- ids
        station_id,
        observed_at,

        -- measures (DWD's -999 is already NULL in raw)
        {{ dwd_decimal('absf_std') }} as absolute_humidity_gm3,
        {{ dwd_decimal('vp_std') }} as vapour_pressure_hpa,
        {{ dwd_decimal('tf_std') }} as wet_bulb_temperature_c,
        {{ dwd_decimal('p_std') }} as pressure_station_hpa,
        {{ dwd_decimal('tt_std') }} as temperature_c,
        {{ dwd_decimal('rf_std') }} as relative_humidity_pct,
        {{ dwd_decimal('td_std') }} as dew_point_c,

        {{ dwd_delivery_columns() }}
    from source

),

final as (

    select * from renamed

)

select * from final
