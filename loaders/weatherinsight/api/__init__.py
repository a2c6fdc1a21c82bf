"""``weatherinsight serve``: a read-only HTTP API over the published marts and the backfill ledger.

FastAPI on uvicorn, reading through a psycopg 3 connection pool whose sessions run as the role
``weatherinsight_api`` in read-only transactions with a statement timeout (``access``). The app
(``app``) assembles the pool, the error handlers (``errors``) and one router per topic
(``routers``); routes take the warehouse and common parameters as dependencies (``dependencies``),
answer typed shapes (``models``) and read only through ``reads``, the one module that holds SQL.
"""

from weatherinsight.api.access import READER_ROLE, ensure_reader_role, reader
from weatherinsight.api.app import TIMEOUT_ENV, app_from_env, create_app

__all__ = ["READER_ROLE", "TIMEOUT_ENV", "app_from_env", "create_app", "ensure_reader_role", "reader"]
