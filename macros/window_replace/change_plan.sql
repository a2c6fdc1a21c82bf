{#- The change plan: what one build of a change-tracked model recomputes, made once when the model
    compiles. A model starts with

        {%- set plan = change_plan() %}
        {{ change_plan_marker(plan) }}

    and reads each input through `rows_in_scope(ref(...), plan)` (model_inputs.sql). The marker
    writes the plan into the compiled SQL as its first line (`-- change plan: {...}`), where the
    `window_replace` materialization reads it (`recorded_change_plan`, its only reader), so the rows
    it deletes and the changes it records are exactly those the compiled SQL computed; the plan is
    also there for a reader of target/compiled. The plan:
    mode     full (first build, --full-refresh), window (window vars), plain (incremental), skip
             (the products var leaves the model out) or parse;
    ranges   plain: the [station, start, end) ranges to recompute (station null = every station),
             at the model's grain; window: the window, widened to the grain, per station of the
             stations var;
    absorbs  the input changes the build processes: [input, change id] (pending_changes.sql);
    rewrite  true when the build replaces at least 30 % of the table's rows (with rows_inside,
             table_rows): the materialization then writes a new table instead of deleting. -#}

{% macro change_plan() -%}
    {%- do log_window() -%}
    {{ return(adapter.dispatch('change_plan', 'weatherinsight')()) }}
{%- endmacro %}

{% macro default__change_plan() -%}
    {%- if not execute -%}
        {{ return({'mode': 'parse', 'grain': 'hour', 'ranges': [], 'absorbs': []}) }}
    {%- endif -%}
    {%- set grain = config.get('meta', {}).get('window', {}).get('grain', 'hour') -%}
    {%- set incremental = builds_incrementally() -%}
    {%- set mode = 'window' if window_active() else ('plain' if incremental else 'full') -%}
    {%- if mode == 'window' and window_excludes_model() -%}
        {{ return({'mode': 'skip', 'grain': grain, 'ranges': [], 'absorbs': []}) }}
    {%- endif -%}
    {%- set ranges = window_ranges(grain) if mode == 'window' else [] -%}
    {%- if model.resource_type != 'model' -%}
        {#- a unit test: its `unit_test_changed_ranges` var stands in for the warehouse's changes -#}
        {%- if mode == 'plain' -%}
            {%- set ranges = var('unit_test_changed_ranges', []) -%}
        {%- endif -%}
        {{ return({'mode': mode, 'grain': grain, 'ranges': ranges, 'absorbs': []}) }}
    {%- endif -%}
    {#- asked of the database, not of dbt's relation cache: the cache of the `ops` schema (where
        models/ops build) was filled before on-run-start created the change-tracking tables -#}
    {%- set tracked = run_query("select to_regclass('ops.processed_changes') is not null").columns[0].values()[0] -%}
    {%- if not tracked -%}
        {#- change tracking not set up (a linter compiling): a plain build would redo everything -#}
        {%- if mode == 'plain' -%}
            {%- do ranges.append([none, none, none]) -%}
        {%- endif -%}
        {{ return({'mode': mode, 'grain': grain, 'ranges': ranges, 'absorbs': []}) }}
    {%- endif -%}
    {%- set plan = fromjson(run_query(pending_changes_sql(mode, grain, ranges)).columns[0].values()[0] | string) -%}
    {%- do plan.update({'mode': mode, 'grain': grain}) -%}
    {%- if mode == 'window' -%}
        {%- do plan.update({'ranges': ranges}) -%}
    {%- endif -%}
    {%- if plan.ranges and incremental -%}
        {#- rewrite the table instead of deleting and inserting when the build replaces at least 30 %
            of its rows: about where writing the whole table and building its indexes once gets
            cheaper than deleting and inserting row by row with every index kept up to date -#}
        {%- set sizes = run_query(rows_inside_sql(plan)).rows[0] -%}
        {%- do plan.update({
            'rows_inside': sizes[0] | int,
            'table_rows': sizes[1] | int,
            'rewrite': sizes[0] > 0 and sizes[0] * 10 >= sizes[1] * 3,
        }) -%}
    {%- endif -%}
    {{ return(plan) }}
{%- endmacro %}

{#- Whether this build adds to an existing table (dbt's `is_incremental()`, which answers for the
    `incremental` materialization only): the table exists and no --full-refresh. A unit test sets it
    through `is_incremental`'s override. -#}
{% macro builds_incrementally() -%}
    {%- if not execute -%}{{ return(false) }}{%- endif -%}
    {%- if model.resource_type != 'model' or target.type == 'spark' -%}{{ return(is_incremental()) }}{%- endif -%}
    {%- set relation = adapter.get_relation(this.database, this.schema, this.table) -%}
    {{ return(relation is not none and relation.type == 'table' and not should_full_refresh()) }}
{%- endmacro %}

{#- The window as plan ranges: one [station, start, end) per id of the stations (or locations)
    var that narrows a model keyed by `key` (default this model's), or one of every station. -#}
{% macro window_ranges(grain, key=none) -%}
    {%- set bounds = window_bounds(grain) -%}
    {%- set ranges = [] -%}
    {%- for station in (window_ids(window_settings(), key or window_key()) or [none]) -%}
        {%- do ranges.append([station, bounds[0] ~ ' 00:00:00+00', bounds[1] ~ ' 00:00:00+00']) -%}
    {%- endfor -%}
    {{ return(ranges) }}
{%- endmacro %}

{#- One row: how many of the model's rows the plan's window or ranges hold, and how many rows the
    table holds by its statistics. Index range scans: the cost follows the size of the change. -#}
{% macro rows_inside_sql(plan) -%}
    {%- set split = split_ranges(plan) -%}
    select
    {%- if plan.mode == 'window' %}
        (select count(*) from {{ this }} where {{ model_window_predicate() }})
    {%- else %}
        {%- if split.per_station %}
        (
            select count(*) from {{ this }} as inside
            inner join {{ ranges_values(split.per_station, split.column_type) }}
                on {{ in_changed_range(split, 'inside') }}
        )
        {%- else %}
        0
        {%- endif %}
        + (
            {%- if split.every_station %}
            select count(*) from {{ this }}
            where {{ range_condition(split.every_station, split.column, split.column_type) }}
            {%- else %}
            select 0
            {%- endif %}
        )
    {%- endif %},
        (select cast(greatest(reltuples, 0) as bigint) from pg_class where oid = '{{ this }}'::regclass)
{%- endmacro %}

{#- The plan as the comment line the compiled SQL starts with. -#}
{% macro change_plan_marker(plan) -%}
-- change plan: {{ tojson(plan) }}
{%- endmacro %}

{#- At run time: the plan the running model was compiled with (from its compiled SQL), or none. -#}
{% macro recorded_change_plan() -%}
    {%- set match = modules.re.search('-- change plan: (\\{.*\\})', model.compiled_code or '') -%}
    {{ return(fromjson(match.group(1)) if match else none) }}
{%- endmacro %}
