{#- How overlapping DWD deliveries of one station-hour are ranked (first wins). Every criterion
    is a property of the delivery, and the last ones make the order total, so the winner never
    depends on load order or on the plan. -#}
{% macro delivery_precedence() -%}
    quality_level desc nulls last,
    release_rank desc,
    file_created_at desc nulls last,
    file_last_modified desc nulls last,
    load_id desc,
    source_file desc,
    source_row_number desc
{%- endmacro %}

{#- A DWD measure as an exact decimal: DWD publishes values with at most one or two decimals, and
    sums and means over decimals do not depend on the order PostgreSQL adds them in (floats do:
    parallel plans moved the last digits of identical builds). -#}
{% macro dwd_decimal(column) -%}
    {{ return(adapter.dispatch('dwd_decimal', 'weatherinsight')(column)) }}
{%- endmacro %}

{% macro default__dwd_decimal(column) -%}
    cast({{ column }} as numeric)
{%- endmacro %}

{#- The delivery columns every DWD staging model exposes after its measures: the row's own
    quality and position, and the facts of its delivery (`raw_dwd.deliveries`, one row per archive
    and load, joined by `delivery_id`; the raw rows no longer repeat them). Every column is
    qualified, so the join stays unambiguous. -#}
{% macro dwd_delivery_columns() -%}
        -- quality
        cast(source.quality_level as smallint) as quality_level,

        -- delivery
        deliveries.release,
        case deliveries.release when 'historical' then 2 else 1 end as release_rank,
        deliveries.source_file,
        source.source_row_number,
        deliveries.file_size as file_size_bytes,
        deliveries.file_created_at,
        deliveries.file_last_modified,
        cast(source._dlt_load_id as numeric) as load_id,

        -- timestamps
        deliveries.loaded_at
{%- endmacro %}

