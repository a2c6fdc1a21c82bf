with

source as (

    select * from {{ source('raw_dwd', 'quarantine') }}

),

renamed as (

    select
        -- ids
        product as product_name,
        source_file,

        -- what was rejected and why
        source_row_number,
        raw_line,
        reason,

        -- delivery
        release,
        cast(_dlt_load_id as numeric) as load_id,

        -- timestamps
        quarantined_at,

        -- flags
        raw_line is null as is_whole_file
    from source

),

final as (

    select * from renamed

)

select * from final
