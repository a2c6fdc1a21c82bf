{#- How overlapping DWD deliveries of one station-hour are ranked (first wins). Every criterion
    is a property of the delivery, and the last ones make the order total, so the winner never
    depends on the plan. A delivery settled as history (older than a version of its archive already
    loaded) ranks below the newer versions of the same quality level and release. -#}
{% macro delivery_precedence() -%}
    quality_level desc nulls last,
    release_rank desc,
    is_history asc nulls first,
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
    {{ exact_decimal(column) }}
{%- endmacro %}

{#- A measure as an exact decimal (any source): a double becomes a decimal of 15 significant
    digits (PostgreSQL's float8 -> numeric), so aggregates over it are exact and order-independent. -#}
{% macro exact_decimal(column) -%}
    {{ return(adapter.dispatch('exact_decimal', 'weatherinsight')(column)) }}
{%- endmacro %}

{% macro default__exact_decimal(column) -%}
    cast({{ column }} as numeric)
{%- endmacro %}

{#- A dlt load id (unix time with seven decimals, as text) as an exact number. -#}
{% macro load_id_number(column) -%}
    {{ return(adapter.dispatch('load_id_number', 'weatherinsight')(column)) }}
{%- endmacro %}

{% macro default__load_id_number(column) -%}
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
        {{ load_id_number('source._dlt_load_id') }} as load_id,

        -- timestamps
        deliveries.loaded_at,
        -- a stale copy stored as history ranks below the newer versions (weatherinsight.dwd.settle)
        coalesce(deliveries.is_history, false) as is_history
{%- endmacro %}


{#- A raw source table, or -- when nothing has loaded it yet in this warehouse -- an empty relation
    with the columns and types its YAML declares, so the models of a source not loaded yet build
    empty instead of failing (a warehouse with DWD data only still builds the Open-Meteo marts).
    Use it as `from {{ raw_source(...) }}` without an alias of your own: the stand-in carries the
    table's name as its alias. -#}
{% macro raw_source(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute or adapter.get_relation(relation.database, relation.schema, relation.identifier) is not none -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set columns = [] -%}
    {%- for node in graph.sources.values() if node.source_name == source_name and node.name == table_name -%}
        {%- for column in node.columns.values() -%}
            {%- do columns.append('cast(null as ' ~ column.data_type ~ ') as ' ~ adapter.quote(column.name)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if not columns -%}
        {{ exceptions.raise_compiler_error("raw_source: " ~ source_name ~ "." ~ table_name ~ " declares no columns") }}
    {%- endif -%}
    {#- aliased like the table: PostgreSQL before 16 refuses a subquery in FROM without an alias -#}
    {{ return('(select ' ~ columns | join(', ') ~ ' where false) as ' ~ adapter.quote(table_name)) }}
{%- endmacro %}
