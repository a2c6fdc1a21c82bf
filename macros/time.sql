{#- UTC calendar helpers: observation times are timestamptz, calendars are UTC whatever the
    session time zone says. Dispatched so another adapter can bring its own spelling. -#}
{% macro utc_date(timestamp_column) -%}
    {{ return(adapter.dispatch('utc_date', 'weatherinsight')(timestamp_column)) }}
{%- endmacro %}

{% macro default__utc_date(timestamp_column) -%}
    cast(({{ timestamp_column }} at time zone 'UTC') as date)
{%- endmacro %}

{#- A UTC wall-clock timestamp as an instant (timestamptz). -#}
{% macro utc_instant(wall_clock_sql) -%}
    {{ return(adapter.dispatch('utc_instant', 'weatherinsight')(wall_clock_sql)) }}
{%- endmacro %}

{% macro default__utc_instant(wall_clock_sql) -%}
    {{ wall_clock_sql }} at time zone 'UTC'
{%- endmacro %}

{#- Hours in the UTC quarter starting at `quarter_start_sql` (a UTC wall-clock timestamp): 2,160
    to 2,208. -#}
{% macro hours_in_quarter(quarter_start_sql) -%}
    {{ return(adapter.dispatch('hours_in_quarter', 'weatherinsight')(quarter_start_sql)) }}
{%- endmacro %}

{% macro default__hours_in_quarter(quarter_start_sql) -%}
    cast(
            extract(epoch from ({{ quarter_start_sql }} + interval '3 months') - {{ quarter_start_sql }}) / 3600 as integer
        )
{%- endmacro %}

{#- `count_sql` over the hours of the quarter, as numeric(9, 6). -#}
{% macro coverage_ratio(count_sql, quarter_start_sql) -%}
    {{ return(adapter.dispatch('coverage_ratio', 'weatherinsight')(count_sql, quarter_start_sql)) }}
{%- endmacro %}

{% macro default__coverage_ratio(count_sql, quarter_start_sql) -%}
    cast(
            {{ count_sql }}
            / (extract(epoch from ({{ quarter_start_sql }} + interval '3 months') - {{ quarter_start_sql }}) / 3600)
            as numeric(9, 6)
        )
{%- endmacro %}

{#- A literal instant from UTC text such as `2021-01-01 00:00:00+00`. -#}
{% macro timestamp_literal(text) -%}
    {{ return(adapter.dispatch('timestamp_literal', 'weatherinsight')(text)) }}
{%- endmacro %}

{% macro default__timestamp_literal(text) -%}
    cast('{{ text }}' as timestamptz)
{%- endmacro %}

{#- First instant of the UTC quarter, as a timestamp without time zone (UTC wall clock). -#}
{% macro utc_quarter(timestamp_column) -%}
    {{ return(adapter.dispatch('utc_quarter', 'weatherinsight')(timestamp_column)) }}
{%- endmacro %}

{% macro default__utc_quarter(timestamp_column) -%}
    date_trunc('quarter', {{ timestamp_column }} at time zone 'UTC')
{%- endmacro %}
