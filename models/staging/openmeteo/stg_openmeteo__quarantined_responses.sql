with

source as (

    select * from {{ raw_source('raw_openmeteo', 'quarantine') }}

),

final as (

    select
        -- ids
        request_id,
        cast(location_id as integer) as location_id,
        api,

        -- request
        window_start,
        window_end,
        url,
        fetched_at,

        -- why
        reason,
        payload,
        cast(_dlt_load_id as numeric) as load_id
    from source

)

select * from final
