with

source as (

    select * from {{ raw_source('raw_openmeteo', 'air_quality') }}

),

final as (

    select
        -- ids
        cast(location_id as integer) as location_id,
        observed_at,

        -- measures (exact decimals: sums and means do not depend on the order rows are added in)
        {{ exact_decimal('pm2_5') }} as pm2_5_ugm3,
        {{ exact_decimal('pm10') }} as pm10_ugm3,
        {{ exact_decimal('nitrogen_dioxide') }} as no2_ugm3,
        {{ exact_decimal('ozone') }} as o3_ugm3,
        {{ exact_decimal('european_aqi') }} as european_aqi,

        -- delivery
        request_id,
        fetched_at,
        cast(_dlt_load_id as numeric) as load_id
    from source

)

select * from final
