"""WeatherInsight: a backfill-first weather data warehouse (dlt loaders, dbt models, PostgreSQL)."""

import os

from weatherinsight.db import project_root

__version__ = "0.1.0"

# dlt reads its settings (`.dlt/config.toml`: load ids on raw rows, no compression…) from
# DLT_PROJECT_DIR, else from the working directory; commands run from anywhere must get them too
os.environ.setdefault("DLT_PROJECT_DIR", str(project_root()))
