{#- How overlapping DWD deliveries of one station-hour are ranked (first wins). -#}
{% macro delivery_precedence() -%}
    quality_level desc nulls last,
    release_rank desc,
    file_created_at desc nulls last,
    file_last_modified desc nulls last,
    load_id desc,
    source_row_number desc
{%- endmacro %}

{#- Watermark of an incremental model: the newest raw load it has already taken into account.
    Read once at run time and inlined as a literal, so the planner can use the load-id indexes
    (a subquery's value is unknown at planning time and made PostgreSQL scan whole tables).
    Unit tests, whose `this` is a fixture, get the subquery. -#}
{% macro load_watermark() -%}
    {%- if execute and model.resource_type == 'model' -%}
        {%- set result = run_query('select coalesce(max(latest_load_id), 0) from ' ~ this) -%}
        {{ result.columns[0].values()[0] }}
    {%- else -%}
        (select coalesce(max(latest_load_id), 0) from {{ this }})
    {%- endif -%}
{%- endmacro %}

{#- The delivery columns every DWD staging model exposes after its measures. -#}
{% macro dwd_delivery_columns() -%}
        -- quality
        cast(quality_level as smallint) as quality_level,

        -- delivery
        release,
        case release when 'historical' then 2 else 1 end as release_rank,
        source_file,
        source_row_number,
        file_size as file_size_bytes,
        file_created_at,
        file_last_modified,
        cast(_dlt_load_id as numeric) as load_id,

        -- timestamps
        loaded_at
{%- endmacro %}
