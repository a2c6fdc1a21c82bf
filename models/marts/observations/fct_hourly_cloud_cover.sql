-- grain: one row per station and UTC hour; the key is the grain, so a re-delivered hour replaces its row
{{ config(unique_key=['station_id', 'observed_at'], meta={'product': 'cloud_cover'}) }}

{{ hourly_fact('stg_dwd__cloud_cover_observations', measures=[
    'cloud_cover_method',
    'cloud_cover_oktas',
    'is_sky_obscured',
]) }}
