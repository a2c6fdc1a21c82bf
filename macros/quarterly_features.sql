{#- Mean, minimum, maximum and sample standard deviation of one hourly measure. -#}
{% macro measure_statistics(measure) -%}
        avg({{ measure }}) as {{ measure }}_mean,
        min({{ measure }}) as {{ measure }}_min,
        max({{ measure }}) as {{ measure }}_max,
        {{ sample_stddev(measure) }} as {{ measure }}_stddev
{%- endmacro %}

{#- The sample standard deviation of an exact decimal measure, the same whatever order its rows are
    added in. Dispatched: PostgreSQL's numeric stddev_samp is exact; Spark's is computed in double
    precision as the rows arrive, so it takes exact decimal sums there (see spark__sample_stddev). -#}
{% macro sample_stddev(measure) -%}
    {{ return(adapter.dispatch('sample_stddev', 'weatherinsight')(measure)) }}
{%- endmacro %}

{% macro default__sample_stddev(measure) -%}
    stddev_samp({{ measure }})
{%- endmacro %}

{#- Quarterly features per station (or location: the model's `meta.window.key`) from an hourly fact: coverage of `main_measure` (observed
    hours / hours in the UTC quarter) beside statistics of `measures` and any `extra` aggregates
    (a list of SQL expressions with aliases). Windowed builds rebuild the window widened to whole
    quarters; plain incremental builds rebuild the station-quarters of the hourly changes they have
    not processed yet, from all their hours (see macros/window_replace/change_tracking.sql). -#}
{% macro quarterly_features(fact_model, main_measure, measures, extra=[]) -%}
{%- set plan = change_plan() -%}
{%- set key = window_key() -%}
{{ change_plan_marker(plan) }}
with

hours_in_scope as (

    -- the hours of the quarters this build recomputes (whole UTC quarters)
    select
        hourly.*,
        {{ utc_quarter('hourly.observed_at') }} as quarter_start
    from {{ rows_in_scope(ref(fact_model), plan) }} as hourly

),

aggregated as (

    select
        {{ key }},
        quarter_start,
        count({{ main_measure }}) as observation_count,
        {%- for measure in measures %}
        {{ measure_statistics(measure) }},
        {%- endfor %}
        {%- for aggregate in extra %}
        {{ aggregate.expression }} as {{ aggregate.name }},
        {%- endfor %}
        max(latest_load_id) as latest_load_id
    from hours_in_scope
    group by {{ key }}, quarter_start

),

final as (

    select
        -- ids
        {{ key }},
        cast(extract(year from quarter_start) as integer) as year,
        cast(extract(quarter from quarter_start) as integer) as quarter,
        {{ utc_instant('quarter_start') }} as quarter_start_at,

        -- coverage
        observation_count,
        {{ hours_in_quarter('quarter_start') }} as expected_hours,
        {{ coverage_ratio('observation_count', 'quarter_start') }} as coverage_ratio,

        -- statistics
        {%- for measure in measures %}
        {{ measure }}_mean,
        {{ measure }}_min,
        {{ measure }}_max,
        {{ measure }}_stddev,
        {%- endfor %}
        {%- for aggregate in extra %}
        {{ aggregate.name }},
        {%- endfor %}

        -- lineage
        latest_load_id
        {{- lake_partition_column('quarter_start') }}
    from aggregated

)

select * from final
{%- endmacro %}
