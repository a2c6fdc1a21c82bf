"""Open-Meteo weather and air quality as a dlt source, in the shape of dlt's verified sources:
``openmeteo_chunk`` here; planning (``plan``), the HTTP client (``client``), the stored tables'
schemas (``schemas``) and the load as one call (``service.load_openmeteo``) beside it.

One chunk is one dlt load: the answers' rows, their requests, quarantined payloads and a checkpoint
per location it touched land together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence

import dlt
import pyarrow as pa

from weatherinsight.openmeteo.client import Answer
from weatherinsight.openmeteo.schemas import (
    ATTEMPTS_SCHEMA,
    CHECKPOINTS_SCHEMA,
    QUARANTINE_SCHEMA,
    REQUESTS_SCHEMA,
    attempt_rows,
    quarantine_row,
    request_row,
    rows_table,
)
from weatherinsight.openmeteo.settings import APIS, PIPELINE_NAME

__all__ = ["openmeteo_chunk"]


@dlt.source(name=PIPELINE_NAME, max_table_nesting=0)
def openmeteo_chunk(answers: Sequence[Answer], checkpoints: Sequence[dict]) -> list:
    """One committed chunk: the answers' rows, requests and quarantined payloads, every HTTP attempt
    (failed ones too: the provider counts them), and a checkpoint per location it touched (all in
    one dlt load, so they land together or not at all). Every table is yielded, empty or not, so
    all exist after the first load (dbt's sources must resolve)."""
    loaded = [answer for answer in answers if answer.blocks]
    tables = {
        APIS[api].product: rows_table(api, [answer for answer in loaded if answer.batch.api == api]) for api in APIS
    }
    tables["requests"] = pa.Table.from_pylist([request_row(answer) for answer in loaded], schema=REQUESTS_SCHEMA)
    tables["quarantine"] = pa.Table.from_pylist(
        [quarantine_row(answer) for answer in answers if answer.reason is not None], schema=QUARANTINE_SCHEMA
    )
    tables["attempts"] = pa.Table.from_pylist(
        [row for answer in answers for row in attempt_rows(answer)], schema=ATTEMPTS_SCHEMA
    )
    tables["checkpoints"] = pa.Table.from_pylist(list(checkpoints), schema=CHECKPOINTS_SCHEMA)
    return [dlt.resource([table], name=name, write_disposition="append") for name, table in tables.items()]
