{#- Window vars: `--vars '{start_date: 2023-01-01, end_date: 2023-04-01, products: [wind],
    stations: [1975]}'` makes every selected change-tracked model replace exactly that half-open
    window of observation time, widened to whole days or quarters where the model's grain asks for
    it. This file owns reading and checking the vars, the widening, and which models a window
    narrows; ranges.sql turns a window into SQL conditions. -#}

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
