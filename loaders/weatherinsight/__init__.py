"""WeatherInsight: a backfill-first weather data warehouse (dlt loaders, dbt models, PostgreSQL)."""

__version__ = "0.1.0"
