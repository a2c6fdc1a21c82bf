{#- Custom schemas are used as named (`marts`, `staging`…), not prefixed with the target schema,
    so users find the marts in a schema called `marts`. With the `audit_schema` var (set by
    `weatherinsight backfill run`), the windowed models of the `marts` schema (those with
    `meta.window`) are built into that schema instead, where a window is built and tested before
    it is published; what they read besides (dim_station, seeds) stays where it is published. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set audit_schema = var('audit_schema', none) -%}
    {%- set windowed = node is not none and (node.config.get('meta') or {}).get('window') -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif audit_schema and custom_schema_name | trim == 'marts' and windowed -%}
        {{ audit_schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
