-- SCD2 validity of dim_station: every version ends after it starts, and a station's versions
-- follow each other without gaps or overlaps (each one ends where the next begins; only the
-- last is open)
with

versions as (

    select
        station_id,
        valid_from,
        valid_to,
        lead(valid_from) over (partition by station_id order by valid_from) as next_valid_from
    from {{ ref('dim_station') }}

)

select *
from versions
where
    valid_to <= valid_from
    or valid_to is distinct from next_valid_from
