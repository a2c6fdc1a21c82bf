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
        cast(p as double precision) as pressure_sea_level_hpa,
        cast(p0 as double precision) as pressure_station_hpa,

        {{ dwd_delivery_columns() }}
    from source

),

final as (

    select * from renamed

)

select * from final
