{#- Change tracking: the record that tells a plain `dbt build` what to recompute, whatever mix of
    loads, windowed builds and plain builds came before. Every change an incremental model must
    react to is a row somewhere:
    - raw: the hours a dlt load stored (DWD: runs of hours per archive in `raw_dwd.changed_ranges`,
      written when the load is settled, so a re-delivered archive changes only its new and revised
      hours; Open-Meteo: one row of `deliveries` per delivery, counted once its load is complete in
      `_dlt_loads`); its change id is the dlt load id;
    - models: each build of a change-tracked model writes what it replaced to `ops.model_changes`
      (per station, a range of time; no station = every station; no bounds = everything), under
      one change id per build (record_changes.sql, in the build's transaction).
    Each model records in `ops.processed_changes` which changes of its inputs it has processed:
    whole ones (plain and full builds), or the part inside a window (windowed builds). What a plain
    build recomputes is what is left: `ops.unprocessed_changes()`. This file owns those tables and
    functions (created by on-run-start) and the names of inputs. -#}

{#- on-run-start: the tables and the function of change tracking (created once; cheap afterwards). -#}
{% macro ensure_change_tracking() -%}
    {#- PostgreSQL's: the spark target plans from load ids (macros/spark.sql) -#}
    {%- if not execute or target.type == 'spark' -%}{{ return('select 1') }}{%- endif -%}
    do $ddl$
    begin
        -- up to date: nothing to do (the version is the functions' comment; bump it with any change here)
        if coalesce(obj_description(to_regprocedure('ops.unprocessed_changes(text, text[])'), 'pg_proc'), '')
            = '{{ change_tracking_version() }}' then
            return;
        end if;
        -- two first builds at once must not race on `create ... if not exists`
        perform pg_advisory_xact_lock(hashtext('weatherinsight.change-tracking-ddl'));
        create schema if not exists ops;
        create sequence if not exists ops.model_change_ids;
        create table if not exists ops.model_changes (
            change_id bigint not null,
            relation text not null,
            station_id integer,
            range_start timestamptz not null,
            range_end timestamptz not null,
            invocation_id text,
            recorded_at timestamptz not null default now()
        );
        create index if not exists model_changes__relation on ops.model_changes (relation, change_id);
        create table if not exists ops.processed_changes (
            consumer text not null,
            input text not null,
            change_id numeric not null,
            range_start timestamptz,
            range_end timestamptz,
            stations integer[],
            invocation_id text,
            processed_at timestamptz not null default now()
        );
        create unique index if not exists processed_changes__key on ops.processed_changes (
            consumer, input, change_id,
            coalesce(range_start, '-infinity'), coalesce(range_end, 'infinity'), coalesce(stations, '{}')
        );
        {{ change_tracking_functions() }}
        comment on function ops.unprocessed_changes(text, text[]) is '{{ change_tracking_version() }}';
    end
    $ddl$
{%- endmacro %}

{#- The version of the change-tracking objects: a new one makes the next run replace the functions. -#}
{% macro change_tracking_version() -%}
    {{ return('weatherinsight change tracking 4') }}
{%- endmacro %}

{#- The raw sources whose loads are changes: each source that declares `meta.change_tracking`
    (`deliveries`: its table with one row per changed range -- product, key, first and last hour,
    row count, dlt load id; `key`: the column naming the station or location; `loads`, optional: the
    table with one row per complete load (`_dlt_load_id`), else dlt's `_dlt_loads`), with its schema. -#}
{% macro change_tracking_raw_sources() -%}
    {%- set found = {} -%}
    {%- for source_node in graph.sources.values() -%}
        {%- set settings = (source_node.source_meta or {}).get('change_tracking') -%}
        {%- if settings and source_node.schema not in found -%}
            {%- do found.update({source_node.schema: {'schema': source_node.schema, 'deliveries': settings.deliveries, 'key': settings.key, 'loads': settings.get('loads')}}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(found.values() | sort(attribute='schema')) }}
{%- endmacro %}

{#- `schema.table` of the raw table of `product`: the table of that name in a change-tracked raw source. -#}
{% macro change_tracking_raw_table(product) -%}
    {%- for source_node in graph.sources.values() -%}
        {%- if (source_node.source_meta or {}).get('change_tracking') and source_node.name == product -%}
            {{ return(source_node.schema ~ '.' ~ source_node.identifier) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return('raw_dwd.' ~ product) }}
{%- endmacro %}

{#- `schema.table` of a relation, as change tracking names models and raw tables. -#}
{% macro change_tracking_name(relation) -%}
    {{ return(relation.schema ~ '.' ~ relation.identifier) }}
{%- endmacro %}
