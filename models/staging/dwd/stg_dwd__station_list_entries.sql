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
        cast(latitude as {{ sql_type('double precision') }}) as latitude,
        cast(longitude as {{ sql_type('double precision') }}) as longitude,
        cast(height_m as {{ sql_type('double precision') }}) as height_m,
        first_observed_on,
        last_observed_on,

        -- delivery
        release,
        source_file,
        file_last_modified,
        {{ load_id_number('_dlt_load_id') }} as load_id,

        -- timestamps
        loaded_at
    from source

),

final as (

    select * from renamed

)

select * from final
