-- warns with the count when the loader quarantined Open-Meteo answers: nothing is lost silently
{{ config(severity='warn') }}

select
    api,
    location_id,
    reason,
    count(*) as quarantined_answers
from {{ ref('stg_openmeteo__quarantined_responses') }}
group by api, location_id, reason
