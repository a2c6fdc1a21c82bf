"""One definition of a rule, whichever language reads it: what dbt's Jinja makes of windows (widening,
the condition selecting a window's rows, writer-lock keys, product and station lists) is what the
Python side of the backfill makes of them, for a grid of windows, grains and stations; and the
products dbt models are the products the loader reads from the seeds."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
import yaml

from weatherinsight import db
from weatherinsight.dwd.service import LoadRequestError, parse_products, parse_stations
from weatherinsight.dwd.settings import PRODUCTS
from weatherinsight.openmeteo.settings import APIS
from weatherinsight.ops.backfill.locks import writer_lock_name
from weatherinsight.windows import Window, range_predicate

from conftest import dbt_ok, query

pytestmark = pytest.mark.quick

WINDOWS = [
    ("2021-01-01", "2021-04-01"),  # a whole quarter
    ("2021-02-10", "2021-02-20"),  # inside one quarter
    ("2020-12-31", "2021-01-02"),  # across a year end
    ("2021-03-31", "2021-07-01"),  # from a quarter's last day into the next quarter's end
    ("2019-11-15", "2021-05-01"),  # several quarters, both ends partial
    ("2020-02-29", "2020-03-01"),  # a leap day
]
GRAINS = ("hour", "day", "quarter")
STATIONS = [None, [1975], [44, 2115]]
PRODUCT_LISTS = [["wind"], ["air_temperature", "cloud_cover"], "pressure, sun"]
STATION_LISTS = [[44, 1975], "44, 01975", 2115]


@pytest.fixture(scope="module")
def jinja(server, tmp_path_factory) -> dict:
    """What the Jinja side makes of the grid (one `dbt run-operation`)."""
    tmp = tmp_path_factory.mktemp("parity")
    cases = [
        {"start": start, "end": end, "grain": grain, "stations": stations,
         "column_type": "date" if grain == "day" else "timestamptz", "model": f"model_{index}"}
        for index, ((start, end), grain, stations) in enumerate(
            (window, grain, stations) for window in WINDOWS for grain in GRAINS for stations in STATIONS
        )
    ]  # fmt: skip
    arguments = {"cases": cases, "product_lists": PRODUCT_LISTS, "station_lists": STATION_LISTS}
    output = dbt_ok(server, tmp / "target", "run-operation", "window_semantics", "--args", yaml.safe_dump(arguments))
    return json.loads(re.search(r"window semantics: (\{.*\})", output).group(1))


def test_windows_widen_alike(jinja) -> None:
    for case in jinja["windows"]:
        window = Window(date.fromisoformat(case["start"]), date.fromisoformat(case["end"]))
        widened = window.widened(case["grain"])
        assert case["widened"] == [widened.start.isoformat(), widened.end.isoformat()], case


def test_window_conditions_select_the_same_rows(jinja, server) -> None:
    """Both conditions evaluated on a grid of hours (or days) around every bound, for three stations."""
    for case in jinja["windows"]:
        widened = Window(date.fromisoformat(case["start"]), date.fromisoformat(case["end"])).widened(case["grain"])
        python = range_predicate("t", case["column_type"], widened, case["stations"])
        conn = db.connect(server)
        try:
            with conn.cursor() as cursor:
                grid = (
                    "select t, station_id from generate_series(cast(%s as timestamptz) - interval '3 days',"
                    " cast(%s as timestamptz) + interval '3 days', interval '1 hour') as t,"
                    " unnest(array[44, 1975, 2115]) as station_id"
                )
                if case["column_type"] == "date":
                    grid = f"select cast(t as date) as t, station_id from ({grid}) as hours"
                bounds = (f"{widened.start} 00:00:00+00", f"{widened.end} 00:00:00+00")
                selected = []
                for condition in (case["condition"], python.as_string(cursor)):
                    cursor.execute(
                        f"select t::text, station_id from ({grid}) as g where {condition} order by 1, 2", bounds
                    )
                    selected.append(cursor.fetchall())
        finally:
            conn.close()
        assert selected[0] == selected[1], case
        assert selected[0], case  # the grid reaches into every window


def test_writer_lock_keys_are_the_same(jinja, server) -> None:
    for case in jinja["windows"]:
        python_name = writer_lock_name("marts", case["model"])
        (jinja_key, python_key) = query(server, f"select {case['lock_key']}, hashtext(%s)", (python_name,))[0]
        assert jinja_key == python_key, case


def test_product_and_station_lists_parse_alike(jinja) -> None:
    for value, parsed in zip(PRODUCT_LISTS, jinja["products"], strict=True):
        assert parsed == [product.name for product in parse_products(value)], value
    for value, parsed in zip(STATION_LISTS, jinja["stations"], strict=True):
        python = parse_stations(value if not isinstance(value, int) else str(value))
        assert sorted(parsed) == sorted(python), value
    with pytest.raises(LoadRequestError):
        parse_products(["snow"])


def python_merged_ranges(ranges: list[tuple], most: int) -> list[tuple]:
    """The ranges to recompute, computed here: per station, overlapping or touching ranges merged,
    then only the ``most`` - 1 largest gaps kept (the smallest bridged)."""
    merged: dict = {}
    for station, start, end in sorted(ranges, key=lambda r: (r[0] is None, r[0] or 0, r[1], r[2])):
        runs = merged.setdefault(station, [])
        if runs and start <= runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], end)
        else:
            runs.append([start, end])
    result = []
    for station, runs in merged.items():
        gaps = sorted(range(1, len(runs)), key=lambda i: (-(runs[i][0] - runs[i - 1][1]), runs[i][0]))
        kept = sorted(gaps[: most - 1])
        for first, last in zip([0, *kept], [*kept, len(runs)], strict=True):
            result.append((station, runs[first][0], runs[last - 1][1]))
    return sorted(result, key=lambda r: (r[0] is None, r[0] or 0, r[1]))


def test_a_scattered_change_is_recomputed_in_a_few_ranges_per_station(jinja, server) -> None:
    """A change of single hours scattered over a station (a re-release raising the quality level of
    one hour in ten) becomes at most `most_per_station` ranges (3 here): the smallest gaps bridged,
    as computed here, every changed hour still inside a range."""
    import random

    rng = random.Random(5)
    ranges = [(station, hour, hour + rng.choice((1, 1, 2))) for station in (44, 1975)
              for hour in sorted(rng.sample(range(2_000), 40))]  # fmt: skip
    ranges += [(2115, 0, 5), (2115, 5, 9), (2115, 20, 30), (None, 100, 200)]  # touching; few; every station
    values = ", ".join(
        f"({station if station is not None else 'null::integer'}, to_timestamp({start * 3600}),"
        f" to_timestamp({end * 3600}))"
        for station, start, end in ranges
    )
    rows = query(
        server,
        f"with ranges (station_id, range_start, range_end) as (values {values}) select station_id,"
        " extract(epoch from range_start)::bigint / 3600, extract(epoch from range_end)::bigint / 3600"
        f" from ({jinja['merged_ranges']}) as merged order by station_id nulls last, 2",
    )
    assert rows == python_merged_ranges(ranges, 3)
    assert [row for row in rows if row[0] == 2115] == [(2115, 0, 9), (2115, 20, 30)]
    assert all(sum(1 for row in rows if row[0] == station) == 3 for station in (44, 1975))
    for station, start, end in ranges:
        assert any(row[0] == station and row[1] <= start and end <= row[2] for row in rows)


def test_dbt_models_the_products_the_loader_reads(jinja) -> None:
    """Each product of seeds/dwd_products.csv and each Open-Meteo API's product has an hourly fact
    that names it in meta.product, and no model names another."""
    assert jinja["known_products"] == sorted([*PRODUCTS, *(api.product for api in APIS.values())])
