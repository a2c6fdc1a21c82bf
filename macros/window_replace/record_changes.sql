{#- Recording a build (called by the `window_replace` materialization, in the build's transaction,
    so a failed build records nothing): what the build replaced goes to `ops.model_changes` (every
    station and all time for a full build, the window or the plan's ranges otherwise) under one new
    change id, and the input changes it processed to `ops.processed_changes` (whole ones, or for a
    window the window's part and stations). The table's statistics are refreshed when the build
    changed rows, so the next build plans index scans, and not when it had nothing to do. -#}

{% macro record_changes_sql(plan) -%}
    {%- if plan.mode in ('parse', 'skip') -%}
    select 1
    {%- else -%}
        {%- set relation = change_tracking_name(this) -%}
        {%- set changed = [[none, none, none]] if plan.mode == 'full' else plan.ranges -%}
        {%- if changed %}
    analyze {{ this }};
    insert into ops.model_changes (change_id, relation, station_id, range_start, range_end, invocation_id)
    select next_change.change_id, '{{ relation }}', changed_ranges.station_id, changed_ranges.range_start,
        changed_ranges.range_end, '{{ invocation_id }}'
    from (select nextval('ops.model_change_ids') as change_id) as next_change
    cross join {{ ranges_values(changed) }};
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
