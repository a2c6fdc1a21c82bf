{#- One row per station (or location: the model's `meta.window.key`) and hour from a staging model,
    keeping the delivery that wins by `precedence` (DWD: `delivery_precedence()`; Open-Meteo: the
    latest fetch). A full build ranks every delivery; a windowed build (start_date /
    end_date vars) the deliveries of the window's hours; a plain incremental build the deliveries,
    old and new, of the hours that deliveries not yet processed touched (see
    macros/window_replace/change_tracking.sql), so a late delivery with a lower quality level never overwrites a
    better one and the winner never depends on load order. -#}
{% macro hourly_fact(staging_model, measures, precedence=none, carried=['quality_level', 'release', 'source_file']) -%}
{%- set plan = change_plan() -%}
{%- set key = window_key() -%}
{{ change_plan_marker(plan) }}
with

candidates as (

    -- every delivery of the hours this build recomputes (read once: a CTE read twice would be
    -- materialised in full)
    select * from {{ rows_in_scope(ref(staging_model), plan) }} as deliveries

),

ranked as (

    select
        candidates.*,
        row_number() over (
            partition by {{ key }}, observed_at
            order by {{ precedence or delivery_precedence() }}
        ) as precedence_rank,
        count(*) over (partition by {{ key }}, observed_at) as delivery_count,
        max(load_id) over (partition by {{ key }}, observed_at) as latest_load_id
    from candidates

),

final as (

    select
        -- ids
        {{ key }},
        observed_at,

        -- measures
        {%- for measure in measures %}
        {{ measure }},
        {%- endfor %}

        -- delivery
        {%- for column in carried %}
        {{ column }},
        {%- endfor %}
        delivery_count,
        load_id,
        latest_load_id
        {{- lake_partition_column('observed_at') }}
    from ranked
    where precedence_rank = 1

)

select * from final
{%- endmacro %}
