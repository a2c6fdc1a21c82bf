{#- Var-scoped windows: `--vars '{start_date: 2023-01-01, end_date: 2023-04-01, products: [wind],
    stations: [1975]}'` makes every selected incremental model replace exactly that half-open window
    of observation time (widened to whole days or quarters where the model's grain asks for it). -#}

{#- The window the vars ask for, validated, as a dict (start, end, products, stations, locations), or
    none. `stations` narrows the models keyed by DWD station, `locations` those keyed by location
    (`meta.window.key: location_id`, the Open-Meteo models). -#}
{% macro window_settings() -%}
    {%- set start_value = var('start_date', none) -%}
    {%- set end_value = var('end_date', none) -%}
    {%- set products = var('products', none) -%}
    {%- set stations = var('stations', none) -%}
    {%- set locations = var('locations', none) -%}
    {%- if start_value is none and end_value is none -%}
        {%- if products is not none or stations is not none or locations is not none -%}
            {{ exceptions.raise_compiler_error("window vars: products, stations and locations narrow a window; give start_date and end_date too") }}
        {%- endif -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if start_value is none or end_value is none -%}
        {{ exceptions.raise_compiler_error("window vars: give both start_date and end_date (YYYY-MM-DD), or neither") }}
    {%- endif -%}
    {%- set start = parse_window_date('start_date', start_value) -%}
    {%- set end = parse_window_date('end_date', end_value) -%}
    {%- if end <= start -%}
        {{ exceptions.raise_compiler_error("window vars: end_date " ~ end ~ " is not after start_date " ~ start) }}
    {%- endif -%}
    {{ return({
        'start': start,
        'end': end,
        'products': parse_window_products(products),
        'stations': parse_window_stations(stations),
        'locations': parse_window_stations(locations, 'location'),
    }) }}
{%- endmacro %}

{% macro parse_window_date(name, value) -%}
    {%- set text = value | string | trim -%}
    {%- set match = modules.re.match('^(\\d{4})-(\\d{2})-(\\d{2})$', text) -%}
    {%- if not match -%}
        {{ exceptions.raise_compiler_error("window vars: " ~ name ~ " '" ~ text ~ "' is not a date in the form YYYY-MM-DD") }}
    {%- endif -%}
    {%- set year, month, day = match.group(1) | int, match.group(2) | int, match.group(3) | int -%}
    {%- if month < 1 or month > 12 or day < 1 -%}
        {{ exceptions.raise_compiler_error("window vars: " ~ name ~ " '" ~ text ~ "' is not a valid date") }}
    {%- endif -%}
    {%- set first_of_next = modules.datetime.date(year + (1 if month == 12 else 0), (month % 12) + 1, 1) -%}
    {%- if day > (first_of_next - modules.datetime.timedelta(days=1)).day -%}
        {{ exceptions.raise_compiler_error("window vars: " ~ name ~ " '" ~ text ~ "' is not a valid date") }}
    {%- endif -%}
    {{ return(modules.datetime.date(year, month, day)) }}
{%- endmacro %}

{% macro parse_window_products(products) -%}
    {%- if products is none -%}{{ return(none) }}{%- endif -%}
    {%- set names = (products.split(',') if products is string else products) | map('string') | map('trim') | list -%}
    {%- set known = known_products() -%}
    {%- for name in names if name not in known -%}
        {{ exceptions.raise_compiler_error("window vars: unknown product '" ~ name ~ "' (known: " ~ known | join(', ') ~ ")") }}
    {%- endfor -%}
    {{ return(names) }}
{%- endmacro %}

{#- The products the project models: the `meta.product` of its models (one per hourly fact), sorted;
    the same as the products of `seeds/dwd_products.csv`, which the loader reads
    (tests/python/test_window_parity.py). -#}
{% macro known_products() -%}
    {%- set found = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
        {%- set product = (node.config.get('meta') or {}).get('product') -%}
        {%- if product and product not in found -%}{%- do found.append(product) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(found | sort) }}
{%- endmacro %}

{% macro parse_window_stations(stations, kind='station') -%}
    {%- if stations is none -%}{{ return(none) }}{%- endif -%}
    {%- set items = (stations.split(',') if stations is string else ([stations] if stations is number else stations)) -%}
    {%- set ids = [] -%}
    {%- for item in items -%}
        {%- set text = item | string | trim -%}
        {%- if not modules.re.match('^\\d{1,5}$', text) -%}
            {{ exceptions.raise_compiler_error("window vars: " ~ kind ~ " '" ~ text ~ "' is not a " ~ ('DWD station' if kind == 'station' else 'location') ~ " id") }}
        {%- endif -%}
        {%- do ids.append(text | int) -%}
    {%- endfor -%}
    {{ return(ids) }}
{%- endmacro %}

{#- on-run-start: reject bad window vars before any SQL runs. -#}
{% macro validate_window_vars() -%}
    {%- if execute -%}
        {%- set window = window_settings() -%}
        {%- if window is not none and flags.FULL_REFRESH -%}
            {%- do log("window vars ignored: --full-refresh rebuilds everything", info=true) -%}
        {%- elif window is not none -%}
            {%- do log("window [" ~ window.start ~ ", " ~ window.end ~ ")"
                ~ (" products " ~ window.products | join(',') if window.products else "")
                ~ (" stations " ~ window.stations | join(',') if window.stations else "")
                ~ (" locations " ~ window.locations | join(',') if window.locations else ""), info=true) -%}
        {%- endif -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{#- Whether this model builds a window: window vars given, and not a `--full-refresh` rebuild
    (a model's first build with window vars creates it with just the window's rows). -#}
{% macro window_active() -%}
    {{ return(execute and window_settings() is not none and not (flags.FULL_REFRESH and not is_incremental())) }}
{%- endmacro %}

{#- The window widened to whole units of `grain` (hour, day or quarter): [start, end) as dates. -#}
{% macro window_bounds(grain) -%}
    {%- set window = window_settings() -%}
    {{ return(widen_window(window.start, window.end, partition_grain(grain))) }}
{%- endmacro %}

{#- The grain a window widens to: the model's own, or on spark its partitions' (UTC quarters). -#}
{% macro partition_grain(grain) -%}
    {{ return('quarter' if target.type == 'spark' else grain) }}
{%- endmacro %}

{#- [start, end) widened to whole UTC quarters for grain `quarter`, unchanged for hour and day
    (Python: `weatherinsight.ops.windows.Window.widened`; tests/python/test_window_parity.py). -#}
{% macro widen_window(start, end, grain) -%}
    {%- if grain == 'quarter' -%}
        {%- set start = modules.datetime.date(start.year, ((start.month - 1) // 3) * 3 + 1, 1) -%}
        {%- set end_quarter = modules.datetime.date(end.year, ((end.month - 1) // 3) * 3 + 1, 1) -%}
        {%- if end_quarter < end -%}
            {%- set next_month = end_quarter.month + 3 -%}
            {%- set end_quarter = modules.datetime.date(end_quarter.year + (1 if next_month > 12 else 0), ((next_month - 1) % 12) + 1, 1) -%}
        {%- endif -%}
        {%- set end = end_quarter -%}
    {%- endif -%}
    {{ return([start, end]) }}
{%- endmacro %}

{#- Whether the window's products var leaves this model out (its `meta.product` is not listed). -#}
{% macro window_excludes_model() -%}
    {%- set window = window_settings() -%}
    {%- set product = config.get('meta', {}).get('product') -%}
    {{ return(window.products is not none and product is not none and product not in window.products) }}
{%- endmacro %}

{#- The column that keys this model's rows besides time: `meta.window.key`, `station_id` unless the
    model says otherwise (`location_id` for the Open-Meteo models). -#}
{% macro window_key(node_config=none) -%}
    {%- set meta = (node_config or config).get('meta') or {} -%}
    {{ return((meta.get('window') or {}).get('key', 'station_id')) }}
{%- endmacro %}

{#- The ids of the window's stations or locations var that narrow a model keyed by `key`. -#}
{% macro window_ids(window, key) -%}
    {%- if target.type == 'spark' -%}
        {#- a spark partition holds every station: a window rewrites it for all of them -#}
        {{ return(none) }}
    {%- endif -%}
    {{ return(window.locations if key == 'location_id' else window.stations) }}
{%- endmacro %}

{#- SQL condition: `time_column` (and the model's key: station or location) inside the window,
    widened to `grain`; `false` when the products var leaves this model out. `column_type` is
    timestamptz or date. -#}
{% macro window_predicate(time_column, grain='hour', column_type='timestamptz') -%}
    {%- set window = window_settings() -%}
    {%- set key = window_key() -%}
    {%- if window_excludes_model() -%}
        false
    {%- else -%}
        {{ window_condition(time_column, window_bounds(grain), column_type, window_ids(window, key), key) }}
    {%- endif -%}
{%- endmacro %}

{#- SQL condition: `time_column` in [bounds[0], bounds[1]) (UTC midnights for timestamptz) and the
    stations (Python: `weatherinsight.ops.windows.range_predicate`; tests/python/test_window_parity.py). -#}
{% macro window_condition(time_column, bounds, column_type='timestamptz', stations=none, station_column='station_id') -%}
    {%- if column_type == 'date' -%}
        {{ time_column }} >= cast('{{ bounds[0] }}' as date) and {{ time_column }} < cast('{{ bounds[1] }}' as date)
    {%- else -%}
        {{ time_column }} >= {{ timestamp_literal(bounds[0] ~ ' 00:00:00+00') }}
        and {{ time_column }} < {{ timestamp_literal(bounds[1] ~ ' 00:00:00+00') }}
    {%- endif -%}
    {%- if stations %}
        and {{ station_column }} in ({{ stations | join(', ') }})
    {%- endif -%}
{%- endmacro %}

{#- The window predicate for this model's own rows, from its `meta.window` config (column, grain). -#}
{% macro model_window_predicate() -%}
    {%- set settings = config.get('meta', {}).get('window', {}) -%}
    {%- if not settings.get('column') -%}
        {{ exceptions.raise_compiler_error(this.name ~ ": a windowed model needs meta.window.column and meta.window.grain") }}
    {%- endif -%}
    {%- set grain = settings.get('grain', 'hour') -%}
    {{ return(window_predicate(settings.column, grain, 'date' if grain == 'day' else 'timestamptz')) }}
{%- endmacro %}

{#- Log, once per model, what a windowed build does (widening, or nothing for a left-out product). -#}
{% macro log_window() -%}
    {%- if execute and window_active() -%}
        {%- set window = window_settings() -%}
        {%- set grain = partition_grain(config.get('meta', {}).get('window', {}).get('grain', 'hour')) -%}
        {%- set bounds = window_bounds(grain) -%}
        {%- if window_excludes_model() -%}
            {%- do log(this.name ~ ": not in products " ~ window.products | join(',') ~ ": nothing to build", info=true) -%}
        {%- elif bounds[0] != window.start or bounds[1] != window.end -%}
            {%- do log(this.name ~ ": window widened to whole " ~ grain ~ "s [" ~ bounds[0] ~ ", " ~ bounds[1] ~ ")", info=true) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- Custom incremental strategy, reading the plan the model was compiled with (see
    macros/change_tracking.sql). Window: delete the model's rows inside the window and insert the
    rebuilt ones, so rows that vanished upstream vanish here and nothing outside the window changes.
    Plain: the same over the ranges new changes touched. Both in the materialization's one
    transaction, after the `writer_lock()` pre-hook. When the plan rewrites the table (the rows
    rebuilt are a large share of it), `postgres__get_create_table_as_sql` has already written the
    new table; here its indexes are built once and it takes the old table's place. -#}
{% macro get_incremental_window_replace_sql(arg_dict) -%}
    {%- set plan = recorded_change_plan() -%}
    {%- if plan is none -%}
        {{ exceptions.raise_compiler_error(this.name ~ ": window_replace needs a change plan (call change_plan() in the model)") }}
    {%- endif -%}
    {%- set target, temp = arg_dict['target_relation'], arg_dict['temp_relation'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- if plan.get('rewrite') %}
    {{ put_rewritten_table_in_place(target) }}
    {%- else %}
        {%- if plan.mode == 'window' %}
    delete from {{ target }}
    where {{ model_window_predicate() }};
        {%- elif plan.mode == 'plain' %}
    {{ delete_changed_rows(target, plan) }}
        {%- endif %}
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ temp }}
    {%- endif -%}
{%- endmacro %}

{#- The table a rewriting build writes, and the name the old table takes for the swap. -#}
{% macro rewritten_relation(target, suffix='__rewrite') -%}
    {{ return(target.incorporate(path={'identifier': target.identifier ~ suffix}, type='table')) }}
{%- endmacro %}

{#- Where dbt creates the temporary table of an incremental build. For a plan that rewrites the
    table, it writes the new table instead -- the rows outside the window or ranges and the rebuilt
    ones -- and creates the temporary relation as an empty view of it (dbt reads its columns only),
    so the rebuilt rows are written once. Every other build goes to dbt's own macro. -#}
{% macro postgres__get_create_table_as_sql(temporary, relation, sql) -%}
    {%- set plan = recorded_change_plan() if temporary and model is mapping and model.get('compiled_code') else none -%}
    {%- if plan is none or not plan.get('rewrite') -%}
        {{ return(create_table_as(temporary, relation, sql)) }}
    {%- endif -%}
    {%- set rewritten = rewritten_relation(this) -%}
    {%- set columns = get_quoted_csv(adapter.get_columns_in_relation(this) | map(attribute='name')) -%}
    {%- do log(this.name ~ ": rebuilding " ~ plan.get('rows_inside') ~ " of about " ~ plan.get('table_rows')
        ~ " rows: rewriting the table", info=true) -%}
    {#- one create-table-as: unlike insert ... select, it may read in parallel -#}
    {{ return(
        "drop table if exists " ~ rewritten ~ ";\n"
        ~ "create table " ~ rewritten ~ " as\n"
        ~ "select " ~ columns ~ " from " ~ this ~ " as kept where " ~ kept_rows_condition(plan, 'kept') ~ "\n"
        ~ "union all\n"
        ~ "select " ~ columns ~ " from (\n" ~ sql ~ "\n) as rebuilt;\n"
        ~ "create temporary view " ~ relation.identifier ~ " as select * from " ~ rewritten ~ " where false"
    ) }}
{%- endmacro %}

{#- SQL: build the rewritten table's indexes once and put it in the old table's place (in the
    materialization's transaction; comments and grants follow from dbt after the strategy). -#}
{% macro put_rewritten_table_in_place(target) -%}
    {%- set rewritten = rewritten_relation(target) -%}
    {%- set retired = rewritten_relation(target, '__retired') -%}
    {%- for index in config.get('indexes', []) %}
    {{ get_create_index_sql(rewritten, index) }};
    {%- endfor %}
    drop table if exists {{ retired }};
    alter table {{ target }} rename to {{ retired.identifier }};
    alter table {{ rewritten }} rename to {{ target.identifier }};
    drop table {{ retired }} cascade
{%- endmacro %}

{#- The advisory-lock key that serialises writers of one relation (also used by tests and tools). -#}
{% macro writer_lock_key(relation) -%}
    hashtext('weatherinsight.writer:{{ relation.schema }}.{{ relation.identifier }}')
{%- endmacro %}

{#- on-run-end: say how many rows each windowed model now holds in the window (what the build
    inserted), and when the window held no data at all. -#}
{% macro report_window(results) -%}
    {%- if execute and not flags.FULL_REFRESH and window_settings() is not none -%}
        {%- set built = [] -%}
        {%- for result in results if result.node.resource_type == 'model' and result.node.config.materialized == 'incremental' -%}
            {%- set rows = window_rows(result.node) if result.status == 'success' else 0 -%}
            {%- do built.append(rows) -%}
            {%- do log("window: " ~ result.node.name ~ " inserted " ~ rows ~ " rows (" ~ result.status ~ ")", info=true) -%}
        {%- endfor -%}
        {%- if built and built | sum == 0 -%}
            {%- do log("window holds no data in the selected models: nothing was built", info=true) -%}
        {%- endif -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{#- The rows a windowed model holds in the window (widened to its grain); 0 when the products var
    leaves it out. -#}
{% macro window_rows(node) -%}
    {%- set window = window_settings() -%}
    {%- set settings = (node.config.get('meta') or {}).get('window') or {} -%}
    {%- set product = (node.config.get('meta') or {}).get('product') -%}
    {%- if not settings or (window.products is not none and product is not none and product not in window.products) -%}
        {{ return(0) }}
    {%- endif -%}
    {%- set bounds = window_bounds(settings.grain) -%}
    {%- set column_type = 'date' if settings.grain == 'day' else 'timestamptz' -%}
    {%- set key = window_key(node.config) -%}
    {%- set ranges = [] -%}
    {%- for station in (window_ids(window, key) or [none]) -%}
        {%- do ranges.append([station, bounds[0] ~ ' 00:00:00+00', bounds[1] ~ ' 00:00:00+00']) -%}
    {%- endfor -%}
    {%- set relation = api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) -%}
    {%- set counted = run_query("select count(*) from " ~ relation ~ " where " ~ range_condition(ranges, settings.column, column_type, key)) -%}
    {{ return(counted.columns[0].values()[0] | int) }}
{%- endmacro %}

{#- run-operation for tests/python/test_window_parity.py: what the Jinja side makes of a grid of
    windows, grains, stations, product and station lists, and a relation's writer-lock key, as one
    JSON log line (`window semantics: {...}`). -#}
{% macro window_semantics(cases, product_lists=[], station_lists=[]) -%}
    {%- set report = {'windows': [], 'products': [], 'stations': [], 'known_products': known_products()} -%}
    {%- for case in cases -%}
        {%- set start = parse_window_date('start_date', case.start) -%}
        {%- set end = parse_window_date('end_date', case.end) -%}
        {%- set bounds = widen_window(start, end, case.grain) -%}
        {%- do report.windows.append({
            'start': case.start, 'end': case.end, 'grain': case.grain, 'stations': case.get('stations'),
            'model': case.get('model', 'fct_hourly_wind'), 'column_type': case.get('column_type', 'timestamptz'),
            'widened': [bounds[0] | string, bounds[1] | string],
            'condition': window_condition('t', bounds, case.get('column_type', 'timestamptz'), case.get('stations'), 'station_id'),
            'lock_key': writer_lock_key(api.Relation.create(schema='marts', identifier=case.get('model', 'fct_hourly_wind'))),
        }) -%}
    {%- endfor -%}
    {%- for value in product_lists -%}
        {%- do report.products.append(parse_window_products(value)) -%}
    {%- endfor -%}
    {%- for value in station_lists -%}
        {%- do report.stations.append(parse_window_stations(value)) -%}
    {%- endfor -%}
    {%- do log('window semantics: ' ~ tojson(report), info=true) -%}
{%- endmacro %}
