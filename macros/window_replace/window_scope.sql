{#- Window scope: which models a window narrows and how -- active or not (--full-refresh wins),
    the bounds widened to the model's grain (or, on spark, its partitions' quarters), the key
    column (station or location) and the ids that narrow it. -#}

{#- Whether this model builds a window: window vars given, and not a `--full-refresh` rebuild
    (a model's first build with window vars creates it with just the window's rows). -#}
{% macro window_active() -%}
    {{ return(execute and window_settings() is not none and not (flags.FULL_REFRESH and not builds_incrementally())) }}
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
    (Python: `weatherinsight.windows.Window.widened`; tests/python/test_window_parity.py). -#}
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
{% macro window_excludes_model(node_config=none) -%}
    {%- set window = window_settings() -%}
    {%- set product = ((node_config or config).get('meta') or {}).get('product') -%}
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
