-- grain: one row per station and UTC hour; the key is the grain, so a re-delivered hour replaces its row
{{ config(unique_key=['station_id', 'observed_at'], meta={'product': 'sun'}) }}

{{ hourly_fact('stg_dwd__sun_observations', measures=[
    'sunshine_minutes',
]) }}
