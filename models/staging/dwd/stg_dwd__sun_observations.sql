with

source as (

    select * from {{ source('raw_dwd', 'sun') }}

),

renamed as (

    select
        -- ids
        station_id,
        observed_at,

        -- measures (DWD's -999 is already NULL in raw)
        {{ dwd_decimal('sd_so') }} as sunshine_minutes,

        {{ dwd_delivery_columns() }}
    from source

),

final as (

    select * from renamed

)

select * from final
