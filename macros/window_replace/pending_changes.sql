{#- Pending changes: the query behind a change plan (change_plan.sql). It asks
    `ops.unprocessed_changes()` (change_tracking.sql) which changes of this model's inputs it has
    not processed, widens their ranges to the model's grain, merges them per station into the
    ranges to recompute, and names the changes the build absorbs: all of them (plain build) or
    those that meet the window (windowed build, recorded for the window's part only). -#}

{#- The query behind change_plan(): one row, one JSON text column {ranges, absorbs}. -#}
{% macro pending_changes_sql(mode, grain, ranges) -%}
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
    merged as (
        {{ merged_ranges('select * from parts') }}
    ),
    {%- if mode == 'window' %}
    window_ranges as (
        select * from {{ ranges_values(ranges) }}
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
