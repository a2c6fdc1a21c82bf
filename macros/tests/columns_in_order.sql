{#- Fails for every row where a chain of columns is out of order: each column of a chain must be
    at most the next (min <= mean <= max, wet_hours <= observation_count <= expected_hours…).
    NULLs are skipped: a pair with a NULL side is not compared. -#}
{% test columns_in_order(model, chains) %}

select *
from {{ model }}
where
    false
    {%- for chain in chains %}
    {%- for index in range(chain | length - 1) %}
    or {{ chain[index] }} > {{ chain[index + 1] }}
    {%- endfor %}
    {%- endfor %}

{% endtest %}
