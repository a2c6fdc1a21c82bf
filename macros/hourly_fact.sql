{#- One row per station and hour from a DWD staging model, keeping the delivery that wins by
    `delivery_precedence()`. A full build ranks every delivery; a windowed build (start_date /
    end_date vars) the deliveries of the window's hours; a plain incremental build the deliveries,
    old and new, of the hours that deliveries not yet processed touched (see
    macros/change_tracking.sql), so a late delivery with a lower quality level never overwrites a
    better one and the winner never depends on load order. -#}
{% macro hourly_fact(staging_model, measures) -%}
{%- set plan = change_plan() -%}
{{ change_plan_marker(plan) }}
{{ log_window() }}
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
            partition by station_id, observed_at
            order by {{ delivery_precedence() }}
        ) as precedence_rank,
        count(*) over (partition by station_id, observed_at) as delivery_count,
        max(load_id) over (partition by station_id, observed_at) as latest_load_id
    from candidates

),

final as (

    select
        -- ids
        station_id,
        observed_at,

        -- measures
        {%- for measure in measures %}
        {{ measure }},
        {%- endfor %}

        -- quality
        quality_level,

        -- delivery
        release,
        source_file,
        delivery_count,
        load_id,
        latest_load_id
    from ranked
    where precedence_rank = 1

)

select * from final
{%- endmacro %}
