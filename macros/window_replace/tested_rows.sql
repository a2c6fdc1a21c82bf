{#- Tested rows: what a data test of a change-tracked model reads. A `dbt build` tests the rows
    this build changed, the ranges its `window_replace` build recorded in `ops.model_changes` under
    this invocation (a window build: its window; a full refresh: everything; a plain build: the
    changed hours, days or quarters; nothing new: nothing). The raw DWD tables' tests read the runs
    of hours stored by loads no hourly fact has processed yet (`raw_dwd.changed_ranges`). `dbt test`
    (`weatherinsight validate --deep`: the weekly whole-table check) reads whole tables. Tests opt in
    with `where: __changed_rows__` (dbt_project.yml, data_tests) and this is dbt's documented hook
    for such placeholders, `get_where_subquery`. -#}

{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == '__changed_rows__' -%}
        {{ return(changed_rows_subquery(relation)) }}
    {%- elif where -%}
        {{ return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}

{#- SQL: the rows of `relation` this run changed (see above), or `relation` itself when the run
    tests whole tables or the relation is not change-tracked. -#}
{% macro changed_rows_subquery(relation) -%}
    {%- if flags.WHICH != 'build' or target.type == 'spark' or var('deep_tests', false) -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set tracked = tracked_node(relation) -%}
    {%- if tracked is none -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- if tracked.resource_type == 'source' -%}
        {%- set ranges -%}
            select changed.station_id, changed.first_observed_at as range_start,
                changed.last_observed_at + interval '1 hour' as range_end
            from {{ tracked.schema }}.changed_ranges as changed
            where changed.product = '{{ tracked.name }}'
                and cast(changed._dlt_load_id as numeric) not in (
                    select processed.change_id from ops.processed_changes as processed
                    where processed.input = '{{ tracked.schema }}.{{ tracked.identifier }}'
                        and processed.range_start is null and processed.stations is null
                )
        {%- endset -%}
        {{ return(rows_in_ranges(relation, ranges, 'station_id', 'observed_at')) }}
    {%- endif -%}
    {%- set window = tracked.config.meta.window -%}
    {%- set ranges -%}
        select station_id, range_start, range_end
        from ops.model_changes
        where relation = '{{ relation.schema }}.{{ relation.identifier }}' and invocation_id = '{{ invocation_id }}'
    {%- endset -%}
    {{ return(rows_in_ranges(relation, ranges, window.get('key', 'station_id'), window.column)) }}
{%- endmacro %}

{#- The node whose changes scope `relation`'s tests: a model with `meta.window` (its recorded
    changes), or a raw table of a source whose changes are runs of hours (`meta.change_tracking.loads`)
    -- that table itself, or a staging view over it (its runs, read through the view); none otherwise. -#}
{% macro tracked_node(relation) -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and node.schema == relation.schema
            and (node.alias or node.name) == relation.identifier -%}
            {%- if node.config.get('meta', {}).get('window') -%}
                {{ return(node) }}
            {%- endif -%}
            {%- set raw = [] -%}
            {%- for parent in node.depends_on.nodes if parent in graph.sources
                and graph.sources[parent].name in run_tables() -%}
                {%- do raw.append(graph.sources[parent]) -%}
            {%- endfor -%}
            {{ return(raw[0] if raw | length == 1 and 'observed_at' in node.columns else none) }}
        {%- endif -%}
    {%- endfor -%}
    {%- for node in graph.sources.values() -%}
        {%- if node.name in run_tables() and node.schema == relation.schema and node.identifier == relation.identifier -%}
            {{ return(node) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}

{#- Names of the raw tables whose changes are runs of hours: those with `observed_at` in a source
    that declares `meta.change_tracking.loads`. -#}
{% macro run_tables() -%}
    {%- set names = [] -%}
    {%- for node in graph.sources.values() -%}
        {%- if (node.source_meta or {}).get('change_tracking', {}).get('loads') and 'observed_at' in node.columns -%}
            {%- do names.append(node.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(names) }}
{%- endmacro %}

{#- SQL: the rows of `relation` inside the ranges `ranges_sql` selects (station_id, range_start,
    range_end; a null station is every station), each row once: overlapping ranges are merged,
    per-station ranges joined on the (key, time) index, ranges of every station a time filter. -#}
{% macro rows_in_ranges(relation, ranges_sql, key, time_column) -%}
    (
        with
        tested_ranges as ({{ ranges_sql }}),
        ordered as (
            select
                coalesce(station_id, -1) as station_id, range_start, range_end,
                max(range_end) over (
                    partition by coalesce(station_id, -1) order by range_start, range_end
                    rows between unbounded preceding and 1 preceding
                ) as previous_end
            from tested_ranges
        ),
        islands as (
            select
                *,
                sum(case when previous_end >= range_start then 0 else 1 end)
                    over (partition by station_id order by range_start, range_end) as island
            from ordered
        ),
        merged as (
            select station_id, min(range_start) as range_start, max(range_end) as range_end
            from islands
            group by station_id, island
        ),
        per_station as (select * from merged where station_id <> -1),
        every_station as (select * from merged where station_id = -1)
        -- lateral: one index range scan per range, whatever the planner guesses of the ranges' count
        select tested.*
        from per_station
        cross join lateral (
            select * from {{ relation }} as candidate
            where candidate.{{ key }} = per_station.station_id
                and candidate.{{ time_column }} >= per_station.range_start
                and candidate.{{ time_column }} < per_station.range_end
            offset 0  -- kept a subquery: a join the planner pulled up would scan the table
        ) as tested
        where not exists (
            select 1 from every_station
            where tested.{{ time_column }} >= every_station.range_start
                and tested.{{ time_column }} < every_station.range_end
        )
        union all
        select tested.*
        from every_station
        cross join lateral (
            select * from {{ relation }} as candidate
            where candidate.{{ time_column }} >= every_station.range_start
                and candidate.{{ time_column }} < every_station.range_end
            offset 0
        ) as tested
    ) dbt_subquery
{%- endmacro %}
