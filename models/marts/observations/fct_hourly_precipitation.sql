-- grain: one row per station and UTC hour; the key is the grain, so a re-delivered hour replaces its row
{{ config(unique_key=['station_id', 'observed_at'], meta={'product': 'precipitation'}) }}

{{ hourly_fact('stg_dwd__precipitation_observations', measures=[
    'precipitation_mm',
    'precipitation_indicator',
    'precipitation_form_code',
]) }}
