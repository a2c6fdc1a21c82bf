-- grain: one row per station and UTC day; the key is the grain, so a changed day replaces its row
{{ config(
    unique_key=['station_id', 'observed_date'],
    meta={'window': {'column': 'observed_date', 'grain': 'day'}},
    indexes=[
        {'columns': ['station_id', 'observed_date'], 'unique': True},
        {'columns': ['observed_date']},
    ],
) }}

{%- set daily_aggregates = {
    'fct_hourly_air_temperature': [
        ('avg(temperature_c)', 'temperature_c_mean'),
        ('min(temperature_c)', 'temperature_c_min'),
        ('max(temperature_c)', 'temperature_c_max'),
        ('avg(relative_humidity_pct)', 'relative_humidity_pct_mean'),
        ('count(temperature_c)', 'temperature_hours'),
    ],
    'fct_hourly_precipitation': [
        ('sum(precipitation_mm)', 'precipitation_mm_total'),
        ('count(precipitation_mm)', 'precipitation_hours'),
    ],
    'fct_hourly_wind': [
        ('avg(wind_speed_ms)', 'wind_speed_ms_mean'),
        ('max(wind_speed_ms)', 'wind_speed_ms_max'),
        ('count(wind_speed_ms)', 'wind_hours'),
    ],
    'fct_hourly_pressure': [
        ('avg(pressure_sea_level_hpa)', 'pressure_sea_level_hpa_mean'),
        ('count(pressure_sea_level_hpa)', 'pressure_hours'),
    ],
    'fct_hourly_cloud_cover': [
        ('avg(cloud_cover_oktas)', 'cloud_cover_oktas_mean'),
        ('count(cloud_cover_oktas)', 'cloud_cover_hours'),
    ],
    'fct_hourly_moisture': [
        ('avg(absolute_humidity_gm3)', 'absolute_humidity_gm3_mean'),
        ('count(absolute_humidity_gm3)', 'moisture_hours'),
    ],
    'fct_hourly_dew_point': [
        ('avg(dew_point_c)', 'dew_point_c_mean'),
        ('count(dew_point_c)', 'dew_point_hours'),
    ],
    'fct_hourly_sun': [
        ('sum(sunshine_minutes)', 'sunshine_minutes_total'),
        ('count(sunshine_minutes)', 'sunshine_hours'),
    ],
} -%}

{{ daily_weather(daily_aggregates) }}
