-- warns with the count when the loader quarantined rows or files: nothing is lost silently
{{ config(severity='warn') }}

select
    product_name,
    source_file,
    reason,
    count(*) as quarantined_rows
from {{ ref('stg_dwd__quarantined_rows') }}
group by product_name, source_file, reason
