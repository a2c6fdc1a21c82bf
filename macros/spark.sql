{#- The spark target (profiles.yml): the same models over the lake that `weatherinsight load dwd
    --destination lake` writes, with the window semantics carried by partitions.

    Every windowed model is partitioned by `lake_quarter` (the first day of the UTC quarter) and
    written by dbt-spark's `insert_overwrite` strategy with dynamic partition overwrite, so a build
    rewrites exactly the partitions its rows fall in:
    - full (first build, --full-refresh): everything;
    - window (start_date / end_date vars): the window widened to whole quarters, every station (a
      partition holds every station's rows, so the stations var cannot narrow it; both are logged);
    - plain: the quarters whose inputs hold a load newer than the newest one the model has seen
      there (`latest_load_id`, which every row carries): raw rows of complete dlt loads for an
      hourly fact, the parent facts' partitions for the daily and quarterly models. A windowed build
      rewrites whole partitions with every load present, so no mix of window and plain builds can
      make a later plain build skip a load. -#}

{#- The column the spark target partitions a windowed model by, from its time column: `, lake_quarter`
    on spark, nothing on PostgreSQL (whose models keep their columns). -#}
{% macro lake_partition_column(time_sql) -%}
    {{ return(adapter.dispatch('lake_partition_column', 'weatherinsight')(time_sql)) }}
{%- endmacro %}

{% macro default__lake_partition_column(time_sql) -%}
{%- endmacro %}

{% macro spark__lake_partition_column(time_sql) -%}
        ,
        -- partition (spark): the UTC quarter
        {{ lake_quarter_of(time_sql) }} as lake_quarter
{%- endmacro %}

{#- SQL (spark): the partition of a time, the first day of its UTC quarter. -#}
{% macro lake_quarter_of(time_sql) -%}
    cast(date_trunc('quarter', {{ time_sql }}) as date)
{%- endmacro %}

{#- The first day of the UTC quarter after the one `day` falls in. -#}
{% macro next_quarter(day) -%}
    {{ return(widen_window(day, day + modules.datetime.timedelta(days=1), 'quarter')[1]) }}
{%- endmacro %}

{#- on-run-start (spark): refuse a window narrower than a partition (nothing is written), then
    make each raw table of the lake a table over its folder of parquet files, made anew each run so
    that columns a newer load added are read. -#}
{% macro ensure_lake_sources() -%}
    {{ return(adapter.dispatch('ensure_lake_sources', 'weatherinsight')()) }}
{%- endmacro %}

{% macro default__ensure_lake_sources() -%}
    select 1
{%- endmacro %}

{% macro spark__ensure_lake_sources() -%}
    {%- if execute -%}
        {%- do check_spark_window() -%}
        {%- set lake = env_var('WEATHERINSIGHT_LAKE_URL', '') | trim -%}
        {%- if not lake -%}
            {{ exceptions.raise_compiler_error("spark target: WEATHERINSIGHT_LAKE_URL is not set: run dbt through `weatherinsight dbt --target spark`, or set it to the lake `weatherinsight load dwd --destination lake` wrote") }}
        {%- endif -%}
        {%- for node in graph.sources.values() | sort(attribute='unique_id') -%}
            {%- if loop.first or node.schema != loop.previtem.schema -%}
                {%- do run_query('create database if not exists ' ~ node.schema) -%}
            {%- endif -%}
            {%- set relation = node.schema ~ '.' ~ node.identifier -%}
            {%- set location = lake.rstrip('/') ~ '/' ~ node.schema ~ '/' ~ node.identifier -%}
            {%- do run_query('drop table if exists ' ~ relation) -%}
            {#- a lake not loaded yet fails here; `weatherinsight dbt --target spark` checks that first -#}
            {%- do run_query(
                'create table ' ~ relation ~ ' using ' ~ ('json' if node.identifier.startswith('_dlt_') else 'parquet')
                ~ " location '" ~ location ~ "'"
            ) -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{#- A window narrower than one partition (no whole UTC quarter inside it) would rewrite a quarter
    for a day: refused before anything runs, with what to give instead. -#}
{% macro check_spark_window() -%}
    {%- set window = window_settings() -%}
    {%- if window is none or flags.FULL_REFRESH -%}{{ return(none) }}{%- endif -%}
    {%- set bounds = widen_window(window.start, window.end, 'quarter') -%}
    {#- the first quarter that starts inside the window must also end inside it -#}
    {%- set first_whole = window.start if window.start == bounds[0] else next_quarter(window.start) -%}
    {%- if next_quarter(first_whole) > window.end -%}
        {{ exceptions.raise_compiler_error("window [" ~ window.start ~ ", " ~ window.end ~ ") is narrower than a partition of the spark target (a UTC quarter): give whole quarters, e.g. start_date: " ~ bounds[0] ~ ", end_date: " ~ bounds[1]) }}
    {%- endif -%}
    {%- if window.stations or window.locations -%}
        {%- do log("spark target: a partition holds every station: the window rewrites its quarters for all of them", info=true) -%}
    {%- endif -%}
{%- endmacro %}

{#- The change plan on spark (see the top of this file): mode, grain `quarter` and the partitions
    (first days of UTC quarters, as text) the build rewrites. -#}
{% macro spark__change_plan() -%}
    {%- set plan = {'mode': 'parse', 'grain': 'quarter', 'partitions': [], 'ranges': [], 'absorbs': []} -%}
    {%- if not execute -%}{{ return(plan) }}{%- endif -%}
    {%- set mode = 'window' if window_active() else ('plain' if is_incremental() else 'full') -%}
    {%- if mode == 'window' and window_excludes_model() -%}
        {%- set mode = 'skip' -%}
    {%- elif mode == 'window' -%}
        {%- set bounds = window_bounds('quarter') -%}
        {%- set quarter = namespace(start=bounds[0]) -%}
        {#- a loop bounded by the quarters the window spans (Jinja has no while) -#}
        {%- for _ in range(4 * (bounds[1].year - bounds[0].year + 1)) if quarter.start < bounds[1] -%}
            {%- do plan.partitions.append(quarter.start | string) -%}
            {%- set quarter.start = next_quarter(quarter.start) -%}
        {%- endfor -%}
    {%- elif mode == 'plain' and model.resource_type != 'model' -%}
        {#- a unit test: everything its given inputs hold -#}
        {%- set mode = 'full' -%}
    {%- elif mode == 'plain' -%}
        {%- for row in run_query(stale_partitions_sql()).rows -%}
            {%- do plan.partitions.append(row[0] | string) -%}
        {%- endfor -%}
        {%- do log(this.name ~ ": " ~ plan.partitions | length ~ " quarter partition(s) with newer loads", info=true) -%}
    {%- endif -%}
    {%- do plan.update({'mode': mode}) -%}
    {{ return(plan) }}
{%- endmacro %}

{#- SQL: the partitions (as text) where an input holds a newer load than this model has seen. -#}
{% macro stale_partitions_sql() -%}
    {#- the inputs change tracking follows on PostgreSQL: the raw table of an hourly fact's product,
        else the windowed parents -#}
    {%- set product = config.get('meta', {}).get('product') -%}
    {%- set raw = change_tracking_raw_table(product) if product else none -%}
    {%- set inputs = [] -%}
    {%- for input in change_inputs() -%}
        {%- if input == raw -%}
            {%- do inputs.append({
                'relation': raw,
                'quarter': lake_quarter_of('observed_at'),
                'load_id': load_id_number('_dlt_load_id'),
                'where': 'where _dlt_load_id in (select load_id from ' ~ raw.split('.')[0] ~ '._dlt_loads where status = 0)',
            }) -%}
        {%- else -%}
            {%- do inputs.append({'relation': input, 'quarter': 'lake_quarter', 'load_id': 'latest_load_id', 'where': ''}) -%}
        {%- endif -%}
    {%- endfor -%}
    with
    seen as (
        select lake_quarter, max(latest_load_id) as newest_seen
        from {{ this }}
        group by lake_quarter
    ),
    incoming as (
        {%- for input in inputs %}
        select {{ input.quarter }} as lake_quarter, max({{ input.load_id }}) as newest_load
        from {{ input.relation }}
        {{ input.where }}
        group by 1
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    )
    select distinct cast(incoming.lake_quarter as string) as lake_quarter
    from incoming
    left join seen on incoming.lake_quarter = seen.lake_quarter
    where seen.newest_seen is null or incoming.newest_load > seen.newest_seen
    order by 1
{%- endmacro %}

{#- The rows of `relation` in the plan's partitions: by `lake_quarter` for a partitioned model
    (partition pruning), by time ranges otherwise (pushed down to the parquet files). -#}
{% macro spark__rows_in_scope(relation, plan, time_column='observed_at') -%}
    {%- if plan.mode in ('window', 'plain', 'skip') -%}
    (
        select * from {{ relation }}
        where {{ partition_condition(relation, plan.partitions, time_column) }}
    )
    {%- else -%}
    {{ relation }}
    {%- endif -%}
{%- endmacro %}

{% macro partition_condition(relation, partitions, time_column) -%}
    {%- if not partitions -%}
        false
    {%- elif relation_is_partitioned(relation) -%}
        lake_quarter in ({% for partition in partitions %}date'{{ partition }}'{{ ', ' if not loop.last }}{% endfor %})
    {%- else -%}
        {%- set ranges = [] -%}
        {%- for partition in partitions | sort -%}
            {%- set start = modules.datetime.date.fromisoformat(partition) -%}
            {%- set end = next_quarter(start) -%}
            {%- if ranges and ranges[-1][1] == start -%}
                {%- set last = ranges.pop() -%}
                {%- do ranges.append([last[0], end]) -%}
            {%- else -%}
                {%- do ranges.append([start, end]) -%}
            {%- endif -%}
        {%- endfor -%}
        ({% for start, end in ranges %}({{ time_column }} >= {{ timestamp_literal(start ~ ' 00:00:00+00') }} and {{ time_column }} < {{ timestamp_literal(end ~ ' 00:00:00+00') }}){{ ' or ' if not loop.last }}{% endfor %})
    {%- endif -%}
{%- endmacro %}

{#- Whether `relation` is one of the project's windowed (partitioned) models. -#}
{% macro relation_is_partitioned(relation) -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
        {%- if (node.alias or node.name) == relation.identifier and (node.config.get('meta') or {}).get('window') -%}
            {{ return(true) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}

{% macro spark__utc_date(timestamp_column) -%}
    to_date({{ timestamp_column }})
{%- endmacro %}

{% macro spark__utc_quarter(timestamp_column) -%}
    date_trunc('quarter', {{ timestamp_column }})
{%- endmacro %}

{#- DWD publishes at most two decimals; three keep every value exact, and Spark's decimal
    aggregates are exact and order-independent as PostgreSQL's numeric ones are. -#}
{#- Spark's stddev_samp sums doubles in the order rows arrive, which a partition layout changes (a
    full refresh and an incremental build differed in the last bits). From the exact decimal count,
    sum and sum of squares instead, the double arithmetic at the end sees the same inputs every time;
    the cancellation it risks is far below lake compare's 1e-9 for weather measures. -#}
{% macro spark__sample_stddev(measure) -%}
    case when count({{ measure }}) > 1 then sqrt(greatest(
        (cast(sum({{ measure }} * {{ measure }}) as double)
            - cast(sum({{ measure }}) as double) * cast(sum({{ measure }}) as double) / count({{ measure }}))
        / (count({{ measure }}) - 1),
        cast(0 as double)
    )) end
{%- endmacro %}

{% macro spark__exact_decimal(column) -%}
    cast({{ column }} as decimal(12, 3))
{%- endmacro %}

{% macro spark__load_id_number(column) -%}
    cast({{ column }} as decimal(24, 7))
{%- endmacro %}

{% macro spark__utc_instant(wall_clock_sql) -%}
    {{ wall_clock_sql }}
{%- endmacro %}

{% macro spark__hours_in_quarter(quarter_start_sql) -%}
    cast((unix_seconds({{ quarter_start_sql }} + interval 3 months) - unix_seconds({{ quarter_start_sql }})) / 3600 as int)
{%- endmacro %}

{#- One rounding, from the exact quotient to six decimals (decimal(38, 0) / decimal(38, 0) has
    scale 6 in Spark), as PostgreSQL's numeric division and cast give. -#}
{% macro spark__coverage_ratio(count_sql, quarter_start_sql) -%}
    cast(
        cast({{ count_sql }} as decimal(38, 0)) / cast({{ hours_in_quarter(quarter_start_sql) }} as decimal(38, 0))
        as decimal(9, 6)
    )
{%- endmacro %}

{% macro spark__timestamp_literal(text) -%}
    timestamp'{{ text[:19] }}'
{%- endmacro %}

{#- A PostgreSQL type name as the target spells it (`text` is Spark's `string`, `double precision`
    its `double`), for the casts of shared models and the column types of seeds. -#}
{% macro sql_type(name) -%}
    {{ return(adapter.dispatch('sql_type', 'weatherinsight')(name)) }}
{%- endmacro %}

{% macro default__sql_type(name) -%}
    {{ return(name) }}
{%- endmacro %}

{% macro spark__sql_type(name) -%}
    {{ return({'text': 'string', 'double precision': 'double'}.get(name | lower | trim, name)) }}
{%- endmacro %}

{#- Seeds on spark: dbt-spark's table of a CSV file, with the seeds' PostgreSQL column types
    (`column_types`) spelled for Spark (the seeds are written anew every run: `+full_refresh`). -#}
{% macro spark__create_csv_table(model, agate_table) -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {#- translated in place: dbt-spark's load of the rows (next) casts to the same types -#}
    {%- for name, type in column_override.items() -%}
        {%- do column_override.update({name: sql_type(type)}) -%}
    {%- endfor -%}
    {%- set quote_seed_column = model['config'].get('quote_columns', None) -%}
    {%- set sql -%}
    create table {{ this.render() }} (
        {%- for col_name in agate_table.column_names -%}
            {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
            {{ adapter.quote_seed_column(col_name | string, quote_seed_column) }} {{ type }}{{ ', ' if not loop.last }}
        {%- endfor -%}
    )
    {{ file_format_clause() }}
    {{ comment_clause() }}
    {%- endset -%}
    {%- call statement('_') -%}
        {{ sql }}
    {%- endcall -%}
    {{ return(sql) }}
{%- endmacro %}
