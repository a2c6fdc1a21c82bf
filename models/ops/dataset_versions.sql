-- grain: one row per product, quarter and backfill window that published it (a dataset version)
-- The ledger is written by `weatherinsight backfill`; until the first backfill it does not exist and
-- raw_source() reads an empty relation of the same columns.
with

windows as (

    select * from {{ raw_source('ops', 'backfill_windows') }}
    where layer = 'marts' and status in ('succeeded', 'rolled back')

),

runs as (

    select * from {{ raw_source('ops', 'backfill_runs') }}

),

quarters as (

    select
        windows.window_id,
        cast(quarter_starts.quarter_start as date) as quarter_start_on
    from windows
    cross join lateral generate_series(
        date_trunc('quarter', cast(windows.window_start as timestamp)),
        cast(windows.window_end as timestamp) - interval '1 day',
        interval '3 months'
    ) as quarter_starts (quarter_start)

),

numbered as (

    select
        windows.product,
        quarters.quarter_start_on,
        windows.window_id,
        windows.run_id,
        windows.stations,
        windows.window_start,
        windows.window_end,
        windows.rows_built,
        windows.checksum,
        windows.status,
        windows.finished_at,
        cast(extract(year from quarters.quarter_start_on) as integer) as year,  -- noqa: RF04
        cast(extract(quarter from quarters.quarter_start_on) as integer) as quarter,  -- noqa: RF04
        cast(row_number() over (
            partition by windows.product, quarters.quarter_start_on
            order by windows.finished_at, windows.window_id
        ) as integer) as version  -- noqa: RF04
    from quarters
    inner join windows on quarters.window_id = windows.window_id

),

versions as (

    select
        numbered.*,
        numbered.product || '/' || numbered.year || '-Q' || numbered.quarter
        || '/v' || numbered.version as dataset_version_id,
        coalesce(numbered.status = 'succeeded' and numbered.version = max(numbered.version) filter (
            where numbered.status = 'succeeded'
        ) over (partition by numbered.product, numbered.quarter_start_on), false) as is_latest
    from numbered

),

final as (

    select
        -- ids
        versions.dataset_version_id,
        versions.product,
        versions.year,
        versions.quarter,
        versions.quarter_start_on,
        versions.version,
        versions.run_id,
        versions.window_id,

        -- what was published
        versions.stations,
        versions.window_start,
        versions.window_end,
        versions.rows_built,
        versions.checksum,
        versions.status,
        runs.command as run_command,
        versions.finished_at as published_at,
        versions.is_latest
    from versions
    left join runs on versions.run_id = runs.run_id

)

select * from final
