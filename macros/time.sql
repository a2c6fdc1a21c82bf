{#- UTC calendar helpers: observation times are timestamptz, calendars are UTC whatever the
    session time zone says. Dispatched so another adapter can bring its own spelling. -#}
{% macro utc_date(timestamp_column) -%}
    {{ return(adapter.dispatch('utc_date', 'weatherinsight')(timestamp_column)) }}
{%- endmacro %}

{% macro default__utc_date(timestamp_column) -%}
    cast(({{ timestamp_column }} at time zone 'UTC') as date)
{%- endmacro %}

{#- First instant of the UTC quarter, as a timestamp without time zone (UTC wall clock). -#}
{% macro utc_quarter(timestamp_column) -%}
    {{ return(adapter.dispatch('utc_quarter', 'weatherinsight')(timestamp_column)) }}
{%- endmacro %}

{% macro default__utc_quarter(timestamp_column) -%}
    date_trunc('quarter', {{ timestamp_column }} at time zone 'UTC')
{%- endmacro %}
