with

source as (

    select * from {{ source('raw_dwd', 'station_lists') }}

),

renamed as (

    select
        -- ids
        station_id,
        product as product_name,

        -- attributes
        station_name,
        state,
        cast(latitude as double precision) as latitude,
        cast(longitude as double precision) as longitude,
        cast(height_m as double precision) as height_m,
        first_observed_on,
        last_observed_on,

        -- delivery
        release,
        source_file,
        file_last_modified,
        cast(_dlt_load_id as numeric) as load_id,

        -- timestamps
        loaded_at
    from source

),

final as (

    select * from renamed

)

select * from final
