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
        cast(tt as double precision) as temperature_c,
        cast(td as double precision) as dew_point_c,

        {{ dwd_delivery_columns() }}
    from source

),

final as (

    select * from renamed

)

select * from final
