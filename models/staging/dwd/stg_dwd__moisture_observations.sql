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
        cast(absf_std as double precision) as absolute_humidity_gm3,
        cast(vp_std as double precision) as vapour_pressure_hpa,
        cast(tf_std as double precision) as wet_bulb_temperature_c,
        cast(p_std as double precision) as pressure_station_hpa,
        cast(tt_std as double precision) as temperature_c,
        cast(rf_std as double precision) as relative_humidity_pct,
        cast(td_std as double precision) as dew_point_c,

        {{ dwd_delivery_columns() }}
    from source

),

final as (

    select * from renamed

)

select * from final
