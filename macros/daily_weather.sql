{#- Body of fct_daily_weather: per station and UTC day, the aggregates of every hourly fact
    (`daily_aggregates` maps a fact model to (expression, name) pairs). A plain incremental build
    recomputes the station-days of the hourly changes it has not processed yet, from all their
    hours (see macros/window_replace/change_tracking.sql); a windowed build the window's days. -#}
{% macro daily_weather(daily_aggregates) -%}
{%- set plan = change_plan() -%}
{{ change_plan_marker(plan) }}
with

{% for fact_model, aggregates in daily_aggregates.items() %}
{{ fact_model | replace('fct_hourly_', '') }}_days as (

    select
        hourly.station_id,
        {{ utc_date('hourly.observed_at') }} as observed_date,
        {%- for expression, name in aggregates %}
        {{ expression }} as {{ name }},
        {%- endfor %}
        max(hourly.latest_load_id) as latest_load_id
    -- the hours of the days this build recomputes (whole UTC days)
    from {{ rows_in_scope(ref(fact_model), plan) }} as hourly
    group by hourly.station_id, {{ utc_date('hourly.observed_at') }}

),

{% endfor %}
station_days as (
    {%- for fact_model in daily_aggregates %}

    select
        station_id,
        observed_date
    from {{ fact_model | replace('fct_hourly_', '') }}_days
    {%- if not loop.last %}

    union
    {%- endif %}
    {%- endfor %}

),

final as (

    select
        -- ids
        station_days.station_id,
        station_days.observed_date,

        -- measures
        {%- for fact_model, aggregates in daily_aggregates.items() %}
        {%- for expression, name in aggregates %}
        {%- if name.endswith('_hours') %}
        coalesce({{ fact_model | replace('fct_hourly_', '') }}_days.{{ name }}, 0) as {{ name }},
        {%- else %}
        {{ fact_model | replace('fct_hourly_', '') }}_days.{{ name }},
        {%- endif %}
        {%- endfor %}
        {%- endfor %}

        -- lineage
        greatest(
            {%- for fact_model in daily_aggregates %}
            {{ fact_model | replace('fct_hourly_', '') }}_days.latest_load_id{{ ',' if not loop.last }}
            {%- endfor %}
        ) as latest_load_id
        {{- lake_partition_column('station_days.observed_date') }}
    from station_days
    {%- for fact_model in daily_aggregates %}
    left join {{ fact_model | replace('fct_hourly_', '') }}_days
        on
            station_days.station_id = {{ fact_model | replace('fct_hourly_', '') }}_days.station_id
            and station_days.observed_date = {{ fact_model | replace('fct_hourly_', '') }}_days.observed_date
    {%- endfor %}

)

select * from final
{%- endmacro %}
