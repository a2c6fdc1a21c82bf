with

source as (

    select * from {{ raw_source('raw_openmeteo', 'location_weather') }}

),

final as (

    select
        -- ids
        cast(location_id as integer) as location_id,
        observed_at,

        -- measures (exact decimals: sums and means do not depend on the order rows are added in)
        {{ exact_decimal('temperature_2m') }} as temperature_c,
        {{ exact_decimal('relative_humidity_2m') }} as relative_humidity_pct,
        {{ exact_decimal('dew_point_2m') }} as dew_point_c,
        {{ exact_decimal('precipitation') }} as precipitation_mm,
        {{ exact_decimal('surface_pressure') }} as surface_pressure_hpa,
        {{ exact_decimal('pressure_msl') }} as pressure_msl_hpa,
        {{ exact_decimal('cloud_cover') }} as cloud_cover_pct,
        {{ exact_decimal('wind_speed_10m') }} as wind_speed_ms,
        {{ exact_decimal('wind_direction_10m') }} as wind_direction_deg,
        {{ exact_decimal('wind_gusts_10m') }} as wind_gust_ms,

        -- delivery
        request_id,
        fetched_at,
        cast(_dlt_load_id as numeric) as load_id
    from source

)

select * from final
