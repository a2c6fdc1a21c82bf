with

source as (

    select * from {{ source('raw_dwd', 'air_temperature') }}

),

renamed as (

    select
        -- ids
        station_id,
        observed_at,

        -- measures (DWD's -999 is already NULL in raw)
        {{ dwd_decimal('tt_tu') }} as temperature_c,
        {{ dwd_decimal('rf_tu') }} as relative_humidity_pct,

        {{ dwd_delivery_columns() }}
    from source

),

final as (

    select * from renamed

)

select * from final
