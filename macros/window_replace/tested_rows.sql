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
                and changed._dlt_load_id in (
                    select loads._dlt_load_id from {{ tracked.schema }}.{{ tracked.source_meta.change_tracking.loads }} as loads
                    where cast(loads._dlt_load_id as numeric) not in (
                        select processed.change_id from ops.processed_changes as processed
                        where processed.input = '{{ tracked.schema }}.{{ tracked.identifier }}'
                            and processed.range_start is null and processed.stations is null
                    )
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

{#- The node whose changes scope `relation`'s tests, found among the test's parents: a model with
    `meta.window` (its recorded changes), or a raw table of a source whose changes are runs of hours
    (`meta.change_tracking.loads`) -- that table itself, or a staging view over it (its runs, read
    through the view); none otherwise. -#}
{% macro tracked_node(relation) -%}
    {%- for parent_id in model.depends_on.nodes -%}
        {%- set node = graph.nodes.get(parent_id) or graph.sources.get(parent_id) -%}
        {%- if node and node.schema == relation.schema
            and (node.identifier if node.resource_type == 'source' else node.alias or node.name) == relation.identifier -%}
            {%- if node.resource_type == 'source' -%}
                {{ return(node if has_runs(node) else none) }}
            {%- elif node.config.get('meta', {}).get('window') -%}
                {{ return(node) }}
            {%- endif -%}
            {%- set raw = [] -%}
            {%- for source_id in node.depends_on.nodes if source_id in graph.sources and has_runs(graph.sources[source_id]) -%}
                {%- do raw.append(graph.sources[source_id]) -%}
            {%- endfor -%}
            {{ return(raw[0] if raw | length == 1 and 'observed_at' in node.columns else none) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}

{#- Whether a raw table's changes are runs of hours: it has `observed_at`, in a source that declares
    `meta.change_tracking.loads`. -#}
{% macro has_runs(source_node) -%}
    {{ return(((source_node.source_meta or {}).get('change_tracking') or {}).get('loads') is not none
        and 'observed_at' in source_node.columns) }}
{%- endmacro %}

{#- SQL: the rows of `relation` inside the ranges `ranges_sql` selects (station_id, range_start,
    range_end; a null station is every station), each row once: overlapping ranges are merged,
    per-station ranges joined on the (key, time) index, ranges of every station a time filter. -#}
{% macro rows_in_ranges(relation, ranges_sql, key, time_column) -%}
    (
        with
        tested_ranges as ({{ ranges_sql }}),
        merged as ({{ merged_ranges('select * from tested_ranges') }}),
        per_station as (select * from merged where station_id is not null),
        every_station as (select * from merged where station_id is null)
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
