with

source as (

    select * from {{ source('raw_dwd', 'precipitation') }}

),

renamed as (

    select
        -- ids
        station_id,
        observed_at,

        -- measures (DWD's -999 is already NULL in raw)
        {{ dwd_decimal('r1') }} as precipitation_mm,
        cast(rs_ind as smallint) as precipitation_indicator,
        cast(wrtr as smallint) as precipitation_form_code,

        {{ dwd_delivery_columns() }}
    from source

),

final as (

    select * from renamed

)

select * from final
