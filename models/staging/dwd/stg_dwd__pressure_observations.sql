with

source as (

    select * from {{ source('raw_dwd', 'pressure') }}

),

renamed as (

    select
        -- ids
        station_id,
        observed_at,

        -- measures (DWD's -999 is already NULL in raw)
        {{ dwd_decimal('p') }} as pressure_sea_level_hpa,
        {{ dwd_decimal('p0') }} as pressure_station_hpa,

        {{ dwd_delivery_columns() }}
    from source

),

final as (

    select * from renamed

)

select * from final
