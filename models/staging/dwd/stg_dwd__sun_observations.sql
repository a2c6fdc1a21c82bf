with

source as (

    select * from {{ source('raw_dwd', 'sun') }}

),

deliveries as (

    select * from {{ source('raw_dwd', 'deliveries') }}

),

renamed as (

    select
        -- ids
        source.station_id,
        source.observed_at,

        -- measures (DWD's -999 is already NULL in raw)
        {{ dwd_decimal('source.sd_so') }} as sunshine_minutes,

        {{ dwd_delivery_columns() }}
    from source
    -- the per-file facts are kept once per delivery, not on every raw row
    inner join deliveries on source.delivery_id = deliveries.delivery_id

),

final as (

    select * from renamed

)

select * from final
