with

source as (

    select * from {{ source('raw_dwd', 'cloud_cover') }}

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
        cast(source.v_n_i as {{ sql_type('text') }}) as cloud_cover_method,
        -- DWD codes a sky that cannot be seen (fog) as -1: no oktas, but worth keeping as a flag
        cast(case when source.v_n = -1 then null else source.v_n end as smallint) as cloud_cover_oktas,
        coalesce(source.v_n = -1, false) as is_sky_obscured,

        {{ dwd_delivery_columns() }}
    from source
    -- the per-file facts are kept once per delivery, not on every raw row
    inner join deliveries on source.delivery_id = deliveries.delivery_id

),

final as (

    select * from renamed

)

select * from final
