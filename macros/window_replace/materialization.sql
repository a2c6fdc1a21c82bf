{#- The `window_replace` materialization (PostgreSQL): how every change-tracked mart is written,
    in one transaction, from the plan the model was compiled with (change_plan.sql):
    1. one writer per model: the writer lock, before the model's SQL reads anything, so a second
       build reads what the first committed instead of overwriting it with rows computed before;
    2. the rows: a first build or --full-refresh writes the whole table (dbt's intermediate-table
       path: a new table, its indexes, then a swap); a window or plain build deletes the rows
       inside the plan's window or ranges and inserts the rebuilt ones, so rows that vanished
       upstream vanish here and nothing outside changes; when that is at least 30 % of the table
       (`plan.rewrite`), it writes a new table instead -- the kept rows and the rebuilt ones --
       and swaps it in the same way;
    3. what changed, and which input changes it processed (record_changes.sql).
    A failed build rolls all three back. Spark builds the same models with dbt-spark's
    `incremental` materialization and `insert_overwrite` (macros/spark.sql). -#}

{% materialization window_replace, adapter='postgres' -%}
    {%- set plan = recorded_change_plan() -%}
    {%- if plan is none -%}
        {{ exceptions.raise_compiler_error(this.name ~ ": window_replace needs a change plan: start the model with `{%- set plan = change_plan() %}` and `{{ change_plan_marker(plan) }}`") }}
    {%- endif -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- set target = this.incorporate(type='table') -%}
    {%- set intermediate = make_intermediate_relation(target) -%}
    {%- set backup = make_backup_relation(target, 'table' if existing is none else existing.type) -%}
    {%- set rebuild = existing is none or existing.is_view or should_full_refresh() -%}
    {%- set swap = existing is not none and (rebuild or plan.get('rewrite', false)) -%}
    {{ drop_relation_if_exists(load_cached_relation(intermediate)) }}
    {{ drop_relation_if_exists(load_cached_relation(backup)) }}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {%- call statement('writer_lock') -%}
        select pg_advisory_xact_lock({{ writer_lock_key(this) }})
    {%- endcall -%}

    {%- if rebuild -%}
        {%- set build_sql = get_create_table_as_sql(False, intermediate if swap else target, sql) -%}
    {%- elif swap -%}
        {%- set build_sql = rewritten_table_sql(plan, existing, intermediate, sql) -%}
    {%- else -%}
        {%- set temp = make_temp_relation(target) -%}
        {%- do run_query(get_create_table_as_sql(True, temp, sql)) -%}
        {%- do adapter.expand_target_column_types(from_relation=temp, to_relation=target) -%}
        {%- set on_schema_change = incremental_validate_on_schema_change(config.get('on_schema_change'), default='ignore') -%}
        {%- set columns = process_schema_changes(on_schema_change, temp, existing) or adapter.get_columns_in_relation(existing) -%}
        {%- set build_sql = replace_rows_sql(plan, target, temp, columns) -%}
    {%- endif -%}
    {%- call statement('main') -%}
        {{ build_sql }}
    {%- endcall -%}
    {%- if rebuild or swap -%}
        {%- do create_indexes(intermediate if swap else target) -%}
    {%- endif -%}
    {%- if swap -%}
        {%- do adapter.rename_relation(existing, backup) -%}
        {%- do adapter.rename_relation(intermediate, target) -%}
    {%- endif -%}

    {%- call statement('record_changes') -%}
        {{ record_changes_sql(plan) }}
    {%- endcall -%}
    {%- do apply_grants(target, config.get('grants'), should_revoke=should_revoke(existing, rebuild)) -%}
    {%- do persist_docs(target, model) -%}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {%- do adapter.commit() -%}
    {%- if swap -%}
        {%- do adapter.drop_relation(backup) -%}
    {%- endif -%}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target]}) }}
{%- endmaterialization %}

{#- SQL of a window or plain build: delete the rows inside the window or the plan's ranges (the
    model's own time column) and insert the rebuilt ones from `temp`. -#}
{% macro replace_rows_sql(plan, target, temp, columns) -%}
    {%- set names = get_quoted_csv(columns | map(attribute='name')) -%}
    {%- set split = split_ranges(plan) -%}
    {%- if plan.mode == 'window' %}
    delete from {{ target }}
    where {{ model_window_predicate() }};
    {%- elif plan.mode == 'plain' %}
        {%- if split.per_station %}
    delete from {{ target }} as target
    using {{ ranges_values(split.per_station, split.column_type) }}
    where {{ in_changed_range(split, 'target') }};
        {%- endif %}
        {%- if split.every_station %}
    delete from {{ target }}
    where {{ range_condition(split.every_station, split.column, split.column_type) }};
        {%- endif %}
    {%- endif %}
    insert into {{ target }} ({{ names }})
    select {{ names }} from {{ temp }}
{%- endmacro %}

{#- SQL of a build that rewrites the table: the rows outside the window or ranges and the rebuilt
    ones, written once into `intermediate` (create table as: unlike insert ... select, it may read
    in parallel). Refused when the model's columns are no longer the table's. -#}
{% macro rewritten_table_sql(plan, existing, intermediate, sql) -%}
    {%- set kept_columns = adapter.get_columns_in_relation(existing) | map(attribute='name') | list -%}
    {%- set built_columns = get_column_schema_from_query(sql) | map(attribute='name') | list -%}
    {%- if kept_columns | sort != built_columns | sort -%}
        {{ exceptions.raise_compiler_error(this.name ~ ": the model's columns (" ~ built_columns | join(', ') ~ ") are not the table's (" ~ kept_columns | join(', ') ~ "): build it with --full-refresh") }}
    {%- endif -%}
    {%- set names = get_quoted_csv(kept_columns) -%}
    {%- do log(this.name ~ ": rebuilding " ~ plan.get('rows_inside') ~ " of about " ~ plan.get('table_rows')
        ~ " rows: rewriting the table", info=true) -%}
    {{ return(get_create_table_as_sql(False, intermediate,
        "select " ~ names ~ " from " ~ existing ~ " as kept where " ~ kept_rows_condition(plan, 'kept') ~ "\n"
        ~ "union all\n"
        ~ "select " ~ names ~ " from (\n" ~ sql ~ "\n) as rebuilt")) }}
{%- endmacro %}

{#- SQL condition on the model's own rows (alias `alias`): outside the plan's window or ranges,
    i.e. the rows a build keeps. -#}
{% macro kept_rows_condition(plan, alias) -%}
    {%- if plan.mode == 'window' -%}
        not ({{ model_window_predicate() }})
    {%- else -%}
        {%- set split = split_ranges(plan) -%}
        {%- if split.per_station %}
        not exists (
            select 1 from {{ ranges_values(split.per_station, split.column_type) }}
            where {{ in_changed_range(split, alias) }}
        )
        {%- else %}
        true
        {%- endif %}
        {%- if split.every_station %}
        and not ({{ range_condition(split.every_station, alias ~ '.' ~ split.column, split.column_type, alias ~ '.' ~ window_key()) }})
        {%- endif %}
    {%- endif -%}
{%- endmacro %}

{#- The advisory-lock key that serialises writers of one relation (also taken by `weatherinsight`'s
    publish and restore: weatherinsight.ops.backfill.locks.writer_lock_name). -#}
{% macro writer_lock_key(relation) -%}
    hashtext('weatherinsight.writer:{{ relation.schema }}.{{ relation.identifier }}')
{%- endmacro %}
