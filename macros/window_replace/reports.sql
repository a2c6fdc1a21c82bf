{#- Reports: what a windowed run says at its end (rows each model now holds in the window), and
    the run-operation the window-parity tests ask for the Jinja side's answers. -#}

{#- on-run-end: say how many rows each windowed model now holds in the window (what the build
    inserted), and when the window held no data at all. -#}
{% macro report_window(results) -%}
    {%- if execute and not flags.FULL_REFRESH and window_settings() is not none -%}
        {%- set built = [] -%}
        {%- for result in results if result.node.resource_type == 'model' and result.node.config.materialized in ('incremental', 'window_replace') -%}
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
    {%- set settings = (node.config.get('meta') or {}).get('window') or {} -%}
    {%- if not settings or window_excludes_model(node.config) -%}
        {{ return(0) }}
    {%- endif -%}
    {%- set column_type = 'date' if settings.grain == 'day' else 'timestamptz' -%}
    {%- set key = window_key(node.config) -%}
    {%- set ranges = window_ranges(settings.grain, key) -%}
    {%- set relation = api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) -%}
    {%- set counted = run_query("select count(*) from " ~ relation ~ " where " ~ range_condition(ranges, settings.column, column_type, key)) -%}
    {{ return(counted.columns[0].values()[0] | int) }}
{%- endmacro %}

{#- run-operation for tests/python/test_window_parity.py: what the Jinja side makes of a grid of
    windows, grains, stations, product and station lists, and a relation's writer-lock key, as one
    JSON log line (`window semantics: {...}`), with the SQL `merged_ranges()` makes of a table `ranges`. -#}
{% macro window_semantics(cases, product_lists=[], station_lists=[]) -%}
    {%- set report = {
        'windows': [], 'products': [], 'stations': [], 'known_products': known_products(),
        'merged_ranges': merged_ranges('select * from ranges', most_per_station=3),
    } -%}
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
