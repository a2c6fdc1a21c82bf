{#- Body of fct_daily_weather: per station and UTC day, the aggregates of every hourly fact
    (`daily_aggregates` maps a fact model to (expression, name) pairs). Incremental runs rebuild
    the station-days that hourly rows newer than the watermark fall into. -#}
{% macro daily_weather(daily_aggregates) -%}
{{ log_window() }}
with

{% if not window_active() and is_incremental() %}
{#- read once: the watermark is a query of its own -#}
{%- set watermark = load_watermark() %}
changed_days as (
    {%- for fact_model in daily_aggregates %}

    select
        station_id,
        {{ utc_date('observed_at') }} as observed_date
    from {{ ref(fact_model) }}
    where latest_load_id > {{ watermark }}
    {%- if not loop.last %}

    union
    {%- endif %}
    {%- endfor %}

),
{% endif %}

{% for fact_model, aggregates in daily_aggregates.items() %}
{{ fact_model | replace('fct_hourly_', '') }}_days as (

    select
        hourly.station_id,
        {{ utc_date('hourly.observed_at') }} as observed_date,
        {%- for expression, name in aggregates %}
        {{ expression }} as {{ name }},
        {%- endfor %}
        max(hourly.latest_load_id) as latest_load_id
    from {{ ref(fact_model) }} as hourly
    {%- if window_active() %}
    where {{ window_predicate('hourly.observed_at', 'day', station_column='hourly.station_id') }}
    {%- elif is_incremental() %}
    -- a range join, so the fact's index on observed_at serves it
    inner join changed_days
        on
            hourly.station_id = changed_days.station_id
            and hourly.observed_at >= (cast(changed_days.observed_date as timestamp) at time zone 'UTC')
            and hourly.observed_at < ((cast(changed_days.observed_date as timestamp) + interval '1 day') at time zone 'UTC')
    {%- endif %}
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
