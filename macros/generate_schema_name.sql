{#- Custom schemas are used as named (`marts`, `staging`…), not prefixed with the target schema,
    so users find the marts in a schema called `marts`. With the `audit_schema` var (set by
    `weatherinsight backfill run`), models of the `marts` schema are built into that schema instead,
    where a window is built and tested before it is published. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set audit_schema = var('audit_schema', none) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif audit_schema and custom_schema_name | trim == 'marts' -%}
        {{ audit_schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
