{#- Model inputs: what a change-tracked model reads of each input, by its plan. A model names an
    input once, `{{ rows_in_scope(ref('fct_hourly_wind'), plan) }}`, and reads everything (full
    build), the window widened to its grain (window vars) or the rows of the changed ranges (plain
    build). Spark reads whole partitions instead (macros/spark.sql). -#}

{#- SQL: the rows of `relation` this build reads, for the plan's mode, at the model's `grain`. -#}
{% macro rows_in_scope(relation, plan, time_column='observed_at') -%}
    {{ return(adapter.dispatch('rows_in_scope', 'weatherinsight')(relation, plan, time_column)) }}
{%- endmacro %}

{% macro default__rows_in_scope(relation, plan, time_column='observed_at') -%}
    {%- if plan.mode == 'window' -%}
    (
        select * from {{ relation }}
        where {{ window_predicate(time_column, plan.grain) }}
    )
    {%- elif plan.mode == 'plain' -%}
    (
        {{ changed_rows(relation, plan, time_column) }}
    )
    {%- elif plan.mode == 'skip' -%}
    (select * from {{ relation }} where false)
    {%- else -%}
    {{ relation }}
    {%- endif -%}
{%- endmacro %}

{#- SQL: the rows of `relation` inside the plan's ranges. Per-station ranges are read by a lateral
    subquery, so each is an index range scan on (station_id, time); ranges of every station are a
    plain time filter, and rows they cover are not taken twice. -#}
{% macro changed_rows(relation, plan, time_column='observed_at') -%}
    {%- set split = split_ranges(plan, time_column) %}
    {%- if split.per_station %}
    select changed_input.*
    from {{ ranges_values(split.per_station) }}
    -- lateral: one index range scan per range (joined, the planner misjudges the ranges and scans the table)
    cross join lateral (
        select * from {{ relation }} as candidate
        where
            candidate.{{ window_key() }} = changed_ranges.station_id
            and candidate.{{ time_column }} >= changed_ranges.range_start
            and candidate.{{ time_column }} < changed_ranges.range_end
        offset 0
    ) as changed_input
    {%- if split.every_station %}
    where not ({{ range_condition(split.every_station, 'changed_input.' ~ time_column) }})
    {%- endif %}
    {%- endif %}
    {%- if split.per_station and split.every_station %}
    union all
    {%- endif %}
    {%- if split.every_station or not split.per_station %}
    select * from {{ relation }}
    where {{ range_condition(split.every_station, time_column) }}
    {%- endif %}
{%- endmacro %}
