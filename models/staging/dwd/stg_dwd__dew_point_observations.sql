with

source as (

    select * from {{ source('raw_dwd', 'dew_point') }}

),

renamed as (

    select
        -- ids
        station_id,
        observed_at,

        -- measures (DWD's -999 is already NULL in raw)
        {{ dwd_decimal('tt') }} as temperature_c,
        {{ dwd_decimal('td') }} as dew_point_c,

        {{ dwd_delivery_columns() }}
    from source

),

final as (

    select * from renamed

)

select * from final
