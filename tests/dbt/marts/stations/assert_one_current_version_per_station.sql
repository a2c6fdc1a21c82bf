-- every station has exactly one current version in dim_station
select
    station_id,
    count(*) filter (where is_current) as current_versions
from {{ ref('dim_station') }}
group by station_id
having count(*) filter (where is_current) <> 1
