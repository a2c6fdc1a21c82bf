-- grain: one row per API and location, its latest checkpoint
with

source as (

    select * from {{ raw_source('raw_openmeteo', 'checkpoints') }}

),

ranked as (

    select
        *,
        row_number() over (partition by api, location_id order by updated_at desc, _dlt_load_id desc) as recency
    from source

),

final as (

    select
        -- ids
        api,
        cast(location_id as integer) as location_id,

        -- checkpoint
        status,
        last_loaded_hour,
        rows as rows_loaded,
        requests as requests_sent,
        weighted_calls,
        quarantined as answers_quarantined,
        last_error,
        run_id,
        updated_at
    from ranked
    where recency = 1

)

select * from final
