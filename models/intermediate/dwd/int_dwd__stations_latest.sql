-- grain: one row per station; the newest station list wins, so attribute changes reach the snapshot
with

list_entries as (

    select * from {{ ref('stg_dwd__station_list_entries') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by station_id
            order by file_last_modified desc nulls last, load_id desc, product_name asc, release asc
        ) as recency_rank,
        min(first_observed_on) over (partition by station_id) as station_first_observed_on,
        max(last_observed_on) over (partition by station_id) as station_last_observed_on
    from list_entries

),

final as (

    select
        -- ids
        station_id,

        -- attributes
        station_name,
        state,
        latitude,
        longitude,
        height_m,
        station_first_observed_on as first_observed_on,
        station_last_observed_on as last_observed_on,

        -- delivery
        source_file,
        file_last_modified
    from ranked
    where recency_rank = 1

)

select * from final
