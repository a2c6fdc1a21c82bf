{#- Change tracking: how a plain `dbt build` knows what to recompute, whatever mix of loads,
    windowed builds and plain builds came before.

    Every change an incremental model must react to is a row somewhere:
    - raw: each archive a dlt load delivered is a row of `raw_dwd.deliveries` (station, first and
      last hour), counted once its load is complete in `raw_dwd._dlt_loads`; its change id is the
      dlt load id;
    - models: each build of a change-tracked model writes what it replaced to `ops.model_changes`
      (per station, a range of time; no station = every station; no bounds = everything), under
      one change id per build.
    Each model records in `ops.processed_changes` which changes of its inputs it has processed:
    whole ones (plain and full builds), or the part inside a window (windowed builds). What a plain
    build recomputes is what is left: `ops.unprocessed_changes()`, widened to the model's grain and
    merged into ranges per station. Nothing is a maximum that a windowed build could move past a
    load it did not process.

    The plan is made when the model compiles and written into the compiled SQL as one comment line
    (`-- change plan: {...}`); the incremental strategy and the post-hook read it back from there,
    so the rows deleted and the changes recorded are exactly those the SQL computed. The model's
    writer lock is taken before the SQL runs (pre-hook), and the post-hook records in the model's
    own transaction: a failed build records nothing. -#}

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
        -- the input changes `consumer_relation` has not processed in whole: deliveries of complete
        -- dlt loads (a load without a delivery for an input: one row with has_rows false) and model
        -- changes
        create or replace function ops.pending_changes(consumer_relation text, input_relations text[])
        returns table (
            input text, change_id numeric, station_id integer,
            range_start timestamptz, range_end timestamptz, has_rows boolean
        )
        language plpgsql stable
        as $function$
        begin
            return query
            select model_changes.relation, cast(model_changes.change_id as numeric), model_changes.station_id,
                model_changes.range_start, model_changes.range_end, true
            from ops.model_changes as model_changes
            where model_changes.relation = any(input_relations)
                and not exists (
                    select 1 from ops.processed_changes as processed
                    where processed.consumer = consumer_relation
                        and processed.input = model_changes.relation
                        and processed.change_id = model_changes.change_id
                        and processed.range_start is null and processed.range_end is null
                        and processed.stations is null
                );
            {%- for raw in change_tracking_raw_sources() %}
            -- {{ raw.schema }}: one row of `{{ raw.deliveries }}` per delivery, keyed by {{ raw.key }}
            if to_regclass('{{ raw.schema }}.{{ raw.deliveries }}') is not null
                and to_regclass('{{ raw.schema }}._dlt_loads') is not null then
                return query
                with
                pending_loads as (
                    select loads.load_id, cast(loads.load_id as numeric) as load_number,
                        substr(inputs.relation, length('{{ raw.schema }}.') + 1) as product, inputs.relation
                    from {{ raw.schema }}._dlt_loads as loads
                    cross join unnest(input_relations) as inputs (relation)
                    where loads.status = 0
                        and inputs.relation like '{{ raw.schema }}.%'
                        and not exists (
                            select 1 from ops.processed_changes as processed
                            where processed.consumer = consumer_relation
                                and processed.input = inputs.relation
                                and processed.change_id = cast(loads.load_id as numeric)
                                and processed.range_start is null and processed.range_end is null
                                and processed.stations is null
                        )
                )
                select pending_loads.relation, pending_loads.load_number, cast(deliveries.{{ raw.key }} as integer),
                    deliveries.first_observed_at, deliveries.last_observed_at + interval '1 hour',
                    deliveries.{{ raw.key }} is not null
                from pending_loads
                left join {{ raw.schema }}.{{ raw.deliveries }} as deliveries
                    on deliveries._dlt_load_id = pending_loads.load_id
                    and deliveries.product = pending_loads.product
                    and deliveries.row_count > 0;
            end if;
            {%- endfor %}
        end;
        $function$;
        -- what of each of those changes no windowed build of `consumer_relation` has processed yet:
        -- one row per remaining part (station; null = every station), or one row with nothing_left
        create or replace function ops.unprocessed_changes(consumer_relation text, input_relations text[])
        returns table (
            input text, change_id numeric, station_id integer,
            range_start timestamptz, range_end timestamptz, nothing_left boolean
        )
        language sql stable
        as $function$
            with
            changes as (
                select * from ops.pending_changes(consumer_relation, input_relations)
            ),
            remaining as (
                select changes.input, changes.change_id, changes.station_id, part
                from changes
                cross join lateral unnest(
                    tstzmultirange(tstzrange(changes.range_start, changes.range_end))
                    - coalesce(
                        (
                            select range_agg(tstzrange(
                                coalesce(processed.range_start, '-infinity'),
                                coalesce(processed.range_end, 'infinity')
                            ))
                            from ops.processed_changes as processed
                            where processed.consumer = consumer_relation
                                and processed.input = changes.input
                                and processed.change_id = changes.change_id
                                and (
                                    processed.stations is null
                                    or changes.station_id = any(processed.stations)
                                )
                        ),
                        '{}'::tstzmultirange
                    )
                ) as part
                where changes.has_rows
            ),
            pending as (select distinct changes.input, changes.change_id from changes)
            select remaining.input, remaining.change_id, remaining.station_id,
                lower(remaining.part), upper(remaining.part), false
            from remaining
            union all
            select pending.input, pending.change_id, null::integer, null::timestamptz, null::timestamptz, true
            from pending
            where not exists (
                select 1 from remaining
                where remaining.input = pending.input and remaining.change_id = pending.change_id
            )
        $function$;
        comment on function ops.unprocessed_changes(text, text[]) is '{{ change_tracking_version() }}';
    end
    $ddl$
{%- endmacro %}

{#- The version of the change-tracking objects: a new one makes the next run replace the functions. -#}
{% macro change_tracking_version() -%}
    {{ return('weatherinsight change tracking 2') }}
{%- endmacro %}

{#- The raw sources whose loads are changes: each source that declares `meta.change_tracking`
    (`deliveries`: its table with one row per delivery -- product, key, first and last hour, row
    count, dlt load id; `key`: the column naming the station or location), with its schema. -#}
{% macro change_tracking_raw_sources() -%}
    {%- set found = {} -%}
    {%- for source_node in graph.sources.values() -%}
        {%- set settings = (source_node.source_meta or {}).get('change_tracking') -%}
        {%- if settings and source_node.schema not in found -%}
            {%- do found.update({source_node.schema: {'schema': source_node.schema, 'deliveries': settings.deliveries, 'key': settings.key}}) -%}
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

{#- The inputs whose changes this model follows: for an hourly fact the raw table of its product
    (`meta.product`), otherwise its change-tracked parents (models with `meta.window`). -#}
{% macro change_inputs() -%}
    {%- set inputs = [] -%}
    {%- for parent_id in model.depends_on.nodes -%}
        {%- set parent = graph.nodes.get(parent_id) -%}
        {%- if parent is not none and parent.resource_type == 'model' and parent.config.get('meta', {}).get('window') -%}
            {%- do inputs.append(parent.schema ~ '.' ~ (parent.alias or parent.name)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set product = config.get('meta', {}).get('product') -%}
    {%- if not inputs and product -%}
        {%- do inputs.append(change_tracking_raw_table(product)) -%}
    {%- endif -%}
    {{ return(inputs) }}
{%- endmacro %}

{#- SQL: `timestamp_sql` widened down (or up, for the end of a range) to whole `grain`s (UTC). -#}
{% macro widen_to_grain(timestamp_sql, grain, upper=false) -%}
    {%- if grain in ('day', 'quarter') -%}
        {%- if upper -%}
            ((date_trunc('{{ grain }}', ({{ timestamp_sql }} - interval '1 microsecond') at time zone 'UTC')
                + interval '{{ "1 day" if grain == "day" else "3 months" }}') at time zone 'UTC')
        {%- else -%}
            (date_trunc('{{ grain }}', {{ timestamp_sql }} at time zone 'UTC') at time zone 'UTC')
        {%- endif -%}
    {%- else -%}
        {{ timestamp_sql }}
    {%- endif -%}
{%- endmacro %}

{#- SQL rendering a timestamptz as UTC text for the plan (null when unbounded). -#}
{% macro plan_timestamp(timestamp_sql) -%}
    case when isfinite({{ timestamp_sql }})
        then to_char({{ timestamp_sql }} at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00' end
{%- endmacro %}

{#- This model's change plan (see the top of this file), made at compile time:
    mode    full (first build, --full-refresh), window (window vars), plain (incremental), skip
            (the products var leaves the model out) or parse;
    ranges  plain: the [start, end) ranges per station (null = every station) to recompute, at the
            model's grain; window: the window, widened to the grain, per station of the stations var;
    absorbs input changes the build processes: [input, change id] (whole) or, for a window, the
            changes that meet it (recorded for the window's part only). -#}
{% macro change_plan() -%}
    {{ return(adapter.dispatch('change_plan', 'weatherinsight')()) }}
{%- endmacro %}

{% macro default__change_plan() -%}
    {%- if not execute -%}
        {{ return({'mode': 'parse', 'grain': 'hour', 'ranges': [], 'absorbs': []}) }}
    {%- endif -%}
    {%- set grain = config.get('meta', {}).get('window', {}).get('grain', 'hour') -%}
    {%- set mode = 'window' if window_active() else ('plain' if is_incremental() else 'full') -%}
    {%- if mode == 'window' and window_excludes_model() -%}
        {{ return({'mode': 'skip', 'grain': grain, 'ranges': [], 'absorbs': []}) }}
    {%- endif -%}
    {%- set ranges = [] -%}
    {%- if mode == 'window' -%}
        {%- set window = window_settings() -%}
        {%- set bounds = window_bounds(grain) -%}
        {%- for station in (window_ids(window, window_key()) or [none]) -%}
            {%- do ranges.append([station, bounds[0] ~ ' 00:00:00+00', bounds[1] ~ ' 00:00:00+00']) -%}
        {%- endfor -%}
    {%- endif -%}
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
    {%- set plan = run_query(change_plan_sql(mode, grain, ranges)).columns[0].values()[0] | string -%}
    {%- set plan = fromjson(plan) -%}
    {%- do plan.update({'mode': mode, 'grain': grain}) -%}
    {%- if mode == 'window' -%}
        {%- do plan.update({'ranges': ranges}) -%}
    {%- endif -%}
    {%- if plan.ranges and is_incremental() -%}
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

{#- One row: how many of the model's rows the plan's window or ranges hold, and how many rows the
    table holds by its statistics. Index range scans: the cost follows the size of the change. -#}
{% macro rows_inside_sql(plan) -%}
    select
        (
    {%- if plan.mode == 'window' %}
            select count(*) from {{ this }} where {{ model_window_predicate() }}
    {%- else %}
            {%- set split = own_ranges(plan) %}
            {%- if split.per_station %}
            select count(*) from {{ this }} as inside
            inner join {{ own_ranges_values(split) }}
                on
                    inside.{{ window_key() }} = changed_ranges.station_id
                    and inside.{{ split.column }} >= changed_ranges.range_start
                    and inside.{{ split.column }} < changed_ranges.range_end
            {%- else %}
            select 0
            {%- endif %}
        ) + (
            {%- if split.every_station %}
            select count(*) from {{ this }}
            where {{ range_condition(split.every_station, split.column, split.column_type) }}
            {%- else %}
            select 0
            {%- endif %}
    {%- endif %}
        ),
        (select cast(greatest(reltuples, 0) as bigint) from pg_class where oid = '{{ this }}'::regclass)
{%- endmacro %}

{#- The query behind change_plan(): one row, one JSON text column {ranges, absorbs}. -#}
{% macro change_plan_sql(mode, grain, window_ranges) -%}
    {%- set consumer = change_tracking_name(this) -%}
    {%- set inputs = change_inputs() -%}
    with
    pending as (
        select * from ops.unprocessed_changes(
            '{{ consumer }}',
            array[{% for input in inputs %}'{{ input }}'{{ ',' if not loop.last }}{% endfor %}]::text[]
        )
    ),
    parts as (
        select
            station_id,
            {{ widen_to_grain('range_start', grain) }} as range_start,
            {{ widen_to_grain('range_end', grain, upper=true) }} as range_end
        from pending
        where not nothing_left
    ),
    ordered as (
        select
            *,
            max(range_end) over (
                partition by station_id order by range_start, range_end
                rows between unbounded preceding and 1 preceding
            ) as previous_end
        from parts
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
    {%- if mode == 'window' %}
    window_ranges (station_id, range_start, range_end) as (
        values
        {%- for station, start, end in window_ranges %}
        (cast({{ station if station is not none else 'null' }} as integer),
            cast('{{ start }}' as timestamptz), cast('{{ end }}' as timestamptz)){{ ',' if not loop.last }}
        {%- endfor %}
    ),
    absorbed as (
        -- a window processes the part of each change inside it
        select distinct pending.input, pending.change_id
        from pending
        inner join window_ranges
            on (window_ranges.station_id is null or pending.station_id = window_ranges.station_id)
            and pending.range_start < window_ranges.range_end
            and pending.range_end > window_ranges.range_start
        where not pending.nothing_left
    )
    {%- else %}
    absorbed as (
        select distinct input, change_id from pending
    )
    {%- endif %}
    select json_build_object(
        'ranges', coalesce(
            (
                select json_agg(json_build_array(
                    station_id, {{ plan_timestamp('range_start') }}, {{ plan_timestamp('range_end') }}
                ) order by station_id nulls first, range_start)
                from merged
            ),
            '[]'
        ),
        'absorbs', coalesce(
            (select json_agg(json_build_array(input, cast(change_id as text)) order by input, change_id) from absorbed),
            '[]'
        )
    )::text as plan
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

{#- SQL condition: `time_column` (and `station_column`) in one of `ranges` (per-station or global);
    `column_type` date compares with the UTC dates of the bounds. -#}
{% macro range_condition(ranges, time_column, column_type='timestamptz', station_column='station_id') -%}
    {%- set conditions = [] -%}
    {%- for station, start, end in ranges -%}
        {%- set parts = [] -%}
        {%- if station is not none -%}{%- do parts.append(station_column ~ ' = ' ~ station) -%}{%- endif -%}
        {%- if start is not none -%}{%- do parts.append(time_column ~ ' >= ' ~ plan_bound(start, column_type)) -%}{%- endif -%}
        {%- if end is not none -%}{%- do parts.append(time_column ~ ' < ' ~ plan_bound(end, column_type)) -%}{%- endif -%}
        {%- do conditions.append('(' ~ (parts | join(' and ') if parts else 'true') ~ ')') -%}
    {%- endfor -%}
    {{- conditions | join('\n        or ') if conditions else 'false' -}}
{%- endmacro %}

{% macro plan_bound(value, column_type) -%}
    {%- if column_type == 'date' -%}
        cast('{{ value[:10] }}' as date)
    {%- else -%}
        {{ timestamp_literal(value) }}
    {%- endif -%}
{%- endmacro %}

{#- SQL: the rows of `relation` inside the plan's ranges. Per-station ranges are joined, so each is
    an index range scan on (station_id, time); ranges of every station are a plain time filter, and
    rows they cover are not taken twice. -#}
{% macro changed_rows(relation, plan, time_column='observed_at') -%}
    {%- set per_station = [] -%}
    {%- set every_station = [] -%}
    {%- for range in plan.ranges -%}
        {%- do (every_station if range[0] is none else per_station).append(range) -%}
    {%- endfor %}
    {%- if per_station %}
    select changed_input.*
    from {{ relation }} as changed_input
    inner join (
        values
        {%- for station, start, end in per_station %}
        ({{ station }}, {{ plan_bound(start or '-infinity', 'timestamptz') }}, {{ plan_bound(end or 'infinity', 'timestamptz') }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as changed_ranges (station_id, range_start, range_end)
        on
            changed_input.{{ window_key() }} = changed_ranges.station_id
            and changed_input.{{ time_column }} >= changed_ranges.range_start
            and changed_input.{{ time_column }} < changed_ranges.range_end
    {%- if every_station %}
    where not ({{ range_condition(every_station, 'changed_input.' ~ time_column) }})
    {%- endif %}
    {%- endif %}
    {%- if per_station and every_station %}
    union all
    {%- endif %}
    {%- if every_station or not per_station %}
    select * from {{ relation }}
    where {{ range_condition(every_station, time_column) }}
    {%- endif %}
{%- endmacro %}

{#- SQL: the rows of `relation` this build reads, for the plan's mode, at the model's `grain`:
    everything (full), the window widened to the grain, or the changed ranges (plain). -#}
{% macro rows_in_scope(relation, plan, time_column='observed_at') -%}
    {{ return(adapter.dispatch('rows_in_scope', 'weatherinsight')(relation, plan, time_column)) }}
{%- endmacro %}

{% macro default__rows_in_scope(relation, plan, time_column='observed_at') -%}
    {%- if plan.mode == 'window' -%}
    (
        select * from {{ relation }}
        where {{ window_predicate(time_column, plan.grain) }}
    )
    {%- elif plan.mode == 'plain' -%}
    (
        {{ changed_rows(relation, plan, time_column) }}
    )
    {%- elif plan.mode == 'skip' -%}
    (select * from {{ relation }} where false)
    {%- else -%}
    {{ relation }}
    {%- endif -%}
{%- endmacro %}

{#- The plan's ranges split into per-station ranges and ranges of every station, with the bounds
    as literals of the model's own time column (`date` for a daily model). -#}
{% macro own_ranges(plan) -%}
    {%- set settings = config.get('meta', {}).get('window', {}) -%}
    {%- set column_type = 'date' if settings.get('grain') == 'day' else 'timestamptz' -%}
    {%- set split = {'column': settings.column, 'column_type': column_type, 'per_station': [], 'every_station': []} -%}
    {%- for range in plan.ranges -%}
        {%- do (split.every_station if range[0] is none else split.per_station).append(range) -%}
    {%- endfor -%}
    {{ return(split) }}
{%- endmacro %}

{% macro own_ranges_values(split) -%}
    (
        values
        {%- for station, start, end in split.per_station %}
        ({{ station }}, {{ plan_bound(start or '-infinity', split.column_type) }}, {{ plan_bound(end or 'infinity', split.column_type) }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as changed_ranges (station_id, range_start, range_end)
{%- endmacro %}

{#- Strategy part of a plain build: delete the model's rows inside the plan's ranges (its own time
    column), which the insert then replaces with the recomputed ones. -#}
{% macro delete_changed_rows(target_relation, plan) -%}
    {%- set split = own_ranges(plan) -%}
    {%- if split.per_station %}
    delete from {{ target_relation }} as target
    using {{ own_ranges_values(split) }}
    where
        target.{{ window_key() }} = changed_ranges.station_id
        and target.{{ split.column }} >= changed_ranges.range_start
        and target.{{ split.column }} < changed_ranges.range_end;
    {%- endif %}
    {%- if split.every_station %}
    delete from {{ target_relation }}
    where {{ range_condition(split.every_station, split.column, split.column_type) }};
    {%- endif %}
{%- endmacro %}

{#- SQL condition on the model's own rows (alias `alias`): outside the plan's window or ranges,
    i.e. the rows a build keeps. -#}
{% macro kept_rows_condition(plan, alias) -%}
    {%- if plan.mode == 'window' -%}
        not ({{ model_window_predicate() }})
    {%- else -%}
        {%- set split = own_ranges(plan) -%}
        {%- if split.per_station %}
        not exists (
            select 1 from {{ own_ranges_values(split) }}
            where
                changed_ranges.station_id = {{ alias }}.{{ window_key() }}
                and {{ alias }}.{{ split.column }} >= changed_ranges.range_start
                and {{ alias }}.{{ split.column }} < changed_ranges.range_end
        )
        {%- else %}
        true
        {%- endif %}
        {%- if split.every_station %}
        and not ({{ range_condition(split.every_station, alias ~ '.' ~ split.column, split.column_type, alias ~ '.' ~ window_key()) }})
        {%- endif %}
    {%- endif -%}
{%- endmacro %}

{#- pre-hook (in the model's transaction): one writer per model. Taken before the model's SQL
    runs, so a second build reads what the first one committed instead of overwriting it with
    rows computed before. -#}
{% macro writer_lock() -%}
    {{ return(adapter.dispatch('writer_lock', 'weatherinsight')()) }}
{%- endmacro %}

{% macro default__writer_lock() -%}
    select pg_advisory_xact_lock({{ writer_lock_key(this) }})
{%- endmacro %}

{#- post-hook (in the model's transaction): record what this build changed and which input
    changes it processed, as its compiled plan says; refresh the table's statistics when the build
    changed rows (so the next build plans index scans), and not when it had nothing to do. -#}
{% macro record_changes() -%}
    {{ return(adapter.dispatch('record_changes', 'weatherinsight')()) }}
{%- endmacro %}

{% macro default__record_changes() -%}
    {%- set plan = recorded_change_plan() -%}
    {%- if plan is none or plan.mode in ('parse', 'skip') -%}
        select 1
    {%- else -%}
        {%- if plan.mode != 'plain' or plan.ranges %}
    analyze {{ this }};
        {%- endif %}
        {%- set relation = change_tracking_name(this) -%}
        {%- set changed = [[none, none, none]] if plan.mode == 'full' else plan.ranges -%}
        {%- if changed %}
    insert into ops.model_changes (change_id, relation, station_id, range_start, range_end, invocation_id)
    select next_change.change_id, '{{ relation }}', changed.station_id, changed.range_start, changed.range_end,
        '{{ invocation_id }}'
    from (select nextval('ops.model_change_ids') as change_id) as next_change
    cross join (
        values
        {%- for station, start, end in changed %}
        (cast({{ station if station is not none else 'null' }} as integer),
            {{ plan_bound(start or '-infinity', 'timestamptz') }}, {{ plan_bound(end or 'infinity', 'timestamptz') }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as changed (station_id, range_start, range_end);
        {%- endif %}
        {%- if plan.absorbs %}
            {%- set window = plan.ranges[0] if plan.mode == 'window' else none -%}
            {%- set stations = plan.ranges | map(attribute=0) | select('ne', none) | list if plan.mode == 'window' else [] %}
    insert into ops.processed_changes (consumer, input, change_id, range_start, range_end, stations, invocation_id)
    select '{{ relation }}', absorbed.input, cast(absorbed.change_id as numeric),
        {{ plan_bound(window[1], 'timestamptz') if window else 'null' }},
        {{ plan_bound(window[2], 'timestamptz') if window else 'null' }},
        {{ "array[" ~ stations | join(', ') ~ "]" if stations else 'null' }},
        '{{ invocation_id }}'
    from (
        values
        {%- for input, change_id in plan.absorbs %}
        ('{{ input }}', '{{ change_id }}'){{ ',' if not loop.last }}
        {%- endfor %}
    ) as absorbed (input, change_id)
    on conflict do nothing;
        {%- endif %}
        select 1
    {%- endif -%}
{%- endmacro %}
