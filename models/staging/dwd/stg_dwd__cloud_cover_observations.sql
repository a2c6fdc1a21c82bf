with

source as (

    select * from {{ source('raw_dwd', 'cloud_cover') }}

),

renamed as (

    select
        -- ids
        station_id,
        observed_at,

        -- measures (DWD's -999 is already NULL in raw)
        cast(v_n_i as text) as cloud_cover_method,
        -- DWD codes a sky that cannot be seen (fog) as -1: no oktas, but worth keeping as a flag
        cast(case when v_n = -1 then null else v_n end as smallint) as cloud_cover_oktas,
        coalesce(v_n = -1, false) as is_sky_obscured,

        {{ dwd_delivery_columns() }}
    from source

),

final as (

    select * from renamed

)

select * from final
