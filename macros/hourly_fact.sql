{#- One row per station and hour from a DWD staging model, keeping the delivery that wins by
    `delivery_precedence()`. Windowed builds (start_date/end_date vars) rebuild the window's hours.
    Plain incremental runs recompute only the hours that raw loads newer than
    the model's watermark touched, over all deliveries of those hours, so a late delivery with a
    lower quality level never overwrites a better one and the winner never depends on load order. -#}
{% macro hourly_fact(staging_model, measures) -%}
{{ log_window() }}
with

{#- each branch reads the staging model once: a CTE read twice would be materialised in full -#}
{% if window_active() %}
candidates as (

    -- windowed build: every delivery of the window's hours (see macros/window.sql)
    select * from {{ ref(staging_model) }}
    where {{ window_predicate('observed_at', 'hour') }}

),
{% elif is_incremental() %}
changed_hours as (

    -- hours that loads newer than the watermark delivered (late rows for old periods included)
    select distinct
        station_id,
        observed_at
    from {{ ref(staging_model) }}
    where load_id > {{ load_watermark() }}

),

candidates as (

    -- every delivery of those hours, old and new, so precedence decides, not load order
    select deliveries.*
    from {{ ref(staging_model) }} as deliveries
    inner join changed_hours
        on
            deliveries.station_id = changed_hours.station_id
            and deliveries.observed_at = changed_hours.observed_at

),
{% else %}
candidates as (

    select * from {{ ref(staging_model) }}

),
{% endif %}

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
