-- grain: one row per station and UTC day; the key is the grain, so a changed day replaces its row
{{ config(unique_key=['station_id', 'observed_date']) }}

{%- set daily_aggregates = {
    'fct_hourly_air_temperature': [
        ('avg(temperature_c)', 'temperature_mean_c'),
        ('min(temperature_c)', 'temperature_min_c'),
        ('max(temperature_c)', 'temperature_max_c'),
        ('avg(relative_humidity_pct)', 'relative_humidity_mean_pct'),
        ('count(temperature_c)', 'temperature_hours'),
    ],
    'fct_hourly_precipitation': [
        ('sum(precipitation_mm)', 'precipitation_total_mm'),
        ('count(precipitation_mm)', 'precipitation_hours'),
    ],
    'fct_hourly_wind': [
        ('avg(wind_speed_ms)', 'wind_speed_mean_ms'),
        ('max(wind_speed_ms)', 'wind_speed_max_ms'),
        ('count(wind_speed_ms)', 'wind_hours'),
    ],
    'fct_hourly_pressure': [
        ('avg(pressure_sea_level_hpa)', 'pressure_sea_level_mean_hpa'),
        ('count(pressure_sea_level_hpa)', 'pressure_hours'),
    ],
    'fct_hourly_cloud_cover': [
        ('avg(cloud_cover_oktas)', 'cloud_cover_mean_oktas'),
        ('count(cloud_cover_oktas)', 'cloud_cover_hours'),
    ],
    'fct_hourly_moisture': [
        ('avg(absolute_humidity_gm3)', 'absolute_humidity_mean_gm3'),
        ('count(absolute_humidity_gm3)', 'moisture_hours'),
    ],
    'fct_hourly_dew_point': [
        ('avg(dew_point_c)', 'dew_point_mean_c'),
        ('count(dew_point_c)', 'dew_point_hours'),
    ],
    'fct_hourly_sun': [
        ('sum(sunshine_minutes)', 'sunshine_total_minutes'),
        ('count(sunshine_minutes)', 'sunshine_hours'),
    ],
} -%}

with

{% if is_incremental() %}
changed_days as (
    {%- for fact_model in daily_aggregates %}

    select
        station_id,
        {{ utc_date('observed_at') }} as observed_date
    from {{ ref(fact_model) }}
    where latest_load_id > {{ load_watermark() }}
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
    {%- if is_incremental() %}
    inner join changed_days
        on
            hourly.station_id = changed_days.station_id
            and {{ utc_date('hourly.observed_at') }} = changed_days.observed_date
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
