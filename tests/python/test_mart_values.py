"""The marts against an independent computation from the archives themselves.

The product files are read with the csv module (not the loader's parser), ``-999`` taken as
missing, hours as UTC (these recent files start in 2018 and later, when DWD's hours are UTC), and
aggregated per UTC day and per UTC quarter in Python with exact decimals. Each station-hour has one
delivery here, so no precedence is involved: what is compared is the arithmetic of the models —
means, extremes, sums, standard deviations, thresholds, coverage — and the calendar they group by.
"""

from __future__ import annotations

import csv
import io
import statistics
import zipfile
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from weatherinsight import db
from weatherinsight.dwd.settings import HOURLY_PATH

from conftest import SAMPLE_MIRROR, dbt_ok, load_ok, query, scratch_database, serve_mirror

HAMBURG, GROSSENKNETEN = 1975, 44

#: fact: (station, archive below hourly/, {hourly fact column: DWD column})
ARCHIVES = {
    "air_temperature": (HAMBURG, "air_temperature/recent/stundenwerte_TU_01975_akt.zip",
                        {"temperature_c": "TT_TU", "relative_humidity_pct": "RF_TU"}),
    "precipitation": (HAMBURG, "precipitation/recent/stundenwerte_RR_01975_akt.zip", {"precipitation_mm": "R1"}),
    "wind": (HAMBURG, "wind/recent/stundenwerte_FF_01975_akt.zip", {"wind_speed_ms": "F"}),
    "pressure": (HAMBURG, "pressure/recent/stundenwerte_P0_01975_akt.zip",
                 {"pressure_sea_level_hpa": "P", "pressure_station_hpa": "P0"}),
    "cloud_cover": (HAMBURG, "cloudiness/recent/stundenwerte_N_01975_akt.zip", {"cloud_cover_oktas": "V_N"}),
    "sun": (HAMBURG, "sun/recent/stundenwerte_SD_01975_akt.zip", {"sunshine_minutes": "SD_SO"}),
    "moisture": (GROSSENKNETEN, "moisture/recent/stundenwerte_TF_00044_akt.zip",
                 {"relative_humidity_pct": "RF_STD", "absolute_humidity_gm3": "ABSF_STD",
                  "vapour_pressure_hpa": "VP_STD", "dew_point_c": "TD_STD"}),
    "dew_point": (GROSSENKNETEN, "dew_point/recent/stundenwerte_TD_00044_akt.zip", {"dew_point_c": "TD"}),
}  # fmt: skip

#: quarterly mart: (hourly data, main measure, measures with statistics, {column: (function, measure)})
QUARTERLY = {
    "quarterly_temperature_features": ("air_temperature", "temperature_c",
                                       ["temperature_c", "relative_humidity_pct"], {}),
    "quarterly_precipitation_features": ("precipitation", "precipitation_mm", [], {
        "precipitation_mm_total": (sum, "precipitation_mm"),
        "wet_hours": (lambda values: sum(1 for value in values if value > 0), "precipitation_mm"),
        "precipitation_mm_max": (max, "precipitation_mm"),
        "precipitation_mm_mean": (statistics.mean, "precipitation_mm"),
    }),
    "quarterly_wind_features": ("wind", "wind_speed_ms", ["wind_speed_ms"], {
        "strong_wind_hours": (lambda values: sum(1 for value in values if value >= Decimal("10.8")), "wind_speed_ms"),
    }),
    "quarterly_pressure_features": ("pressure", "pressure_sea_level_hpa",
                                    ["pressure_sea_level_hpa", "pressure_station_hpa"], {}),
    "quarterly_cloud_cover_features": ("cloud_cover", "cloud_cover_oktas", ["cloud_cover_oktas"], {
        "overcast_hours": (lambda values: sum(1 for value in values if value >= 7), "cloud_cover_oktas"),
        "clear_hours": (lambda values: sum(1 for value in values if value <= 1), "cloud_cover_oktas"),
    }),
    "quarterly_humidity_features": ("moisture", "relative_humidity_pct",
                                    ["relative_humidity_pct", "absolute_humidity_gm3", "vapour_pressure_hpa",
                                     "dew_point_c"], {}),
}  # fmt: skip

#: fct_daily_weather's columns: (hourly data, function, measure); a count is over non-missing values
DAILY = {
    "temperature_c_mean": ("air_temperature", statistics.mean, "temperature_c"),
    "temperature_c_min": ("air_temperature", min, "temperature_c"),
    "temperature_c_max": ("air_temperature", max, "temperature_c"),
    "relative_humidity_pct_mean": ("air_temperature", statistics.mean, "relative_humidity_pct"),
    "temperature_hours": ("air_temperature", len, "temperature_c"),
    "precipitation_mm_total": ("precipitation", sum, "precipitation_mm"),
    "precipitation_hours": ("precipitation", len, "precipitation_mm"),
    "wind_speed_ms_mean": ("wind", statistics.mean, "wind_speed_ms"),
    "wind_speed_ms_max": ("wind", max, "wind_speed_ms"),
    "wind_hours": ("wind", len, "wind_speed_ms"),
    "pressure_sea_level_hpa_mean": ("pressure", statistics.mean, "pressure_sea_level_hpa"),
    "pressure_hours": ("pressure", len, "pressure_sea_level_hpa"),
    "cloud_cover_oktas_mean": ("cloud_cover", statistics.mean, "cloud_cover_oktas"),
    "cloud_cover_hours": ("cloud_cover", len, "cloud_cover_oktas"),
    "absolute_humidity_gm3_mean": ("moisture", statistics.mean, "absolute_humidity_gm3"),
    "moisture_hours": ("moisture", len, "absolute_humidity_gm3"),
    "dew_point_c_mean": ("dew_point", statistics.mean, "dew_point_c"),
    "dew_point_hours": ("dew_point", len, "dew_point_c"),
    "sunshine_minutes_total": ("sun", sum, "sunshine_minutes"),
    "sunshine_hours": ("sun", len, "sunshine_minutes"),
}
#: how a missing value is written: -999, and for cloud cover also -1 (a sky DWD could not see)
MISSING = {"V_N": ("-999", "-1")}
COUNTS = {column for column, (_, function, _) in DAILY.items() if function is len}


def hours_of(relative: str, columns: dict[str, str]) -> dict[datetime, dict[str, Decimal | None]]:
    """Every hour of an archive's product file: its measures as exact decimals, None when missing."""
    with zipfile.ZipFile(SAMPLE_MIRROR / HOURLY_PATH / relative) as archive:
        member = next(name for name in archive.namelist() if name.startswith("produkt_"))
        text = archive.read(member).decode("latin-1")
    reader = csv.reader(io.StringIO(text), delimiter=";")
    header = [name.strip() for name in next(reader)]
    hours = {}
    for fields in reader:
        if not fields or not fields[0].strip():
            continue
        record = dict(zip(header, (field.strip() for field in fields), strict=True))
        at = datetime.strptime(record["MESS_DATUM"], "%Y%m%d%H").replace(tzinfo=UTC)
        assert at.year >= 2001  # UTC throughout: no MEZ period to shift
        hours[at] = {
            measure: None if record[column] in MISSING.get(column, ("-999",)) else Decimal(record[column])
            for measure, column in columns.items()
        }
    return hours


def quarter_of(at: datetime) -> tuple[int, int]:
    return at.year, (at.month - 1) // 3 + 1


def hours_in_quarter(year: int, quarter: int) -> int:
    start = datetime(year, 3 * quarter - 2, 1, tzinfo=UTC)
    end = datetime(year + quarter // 4, 3 * quarter % 12 + 1, 1, tzinfo=UTC)
    return int((end - start).total_seconds() // 3600)


def grouped(hours: dict[datetime, dict], key) -> dict:
    """Per group (``key`` of the hour): each measure's non-missing values, and the group's hours."""
    groups: dict = defaultdict(lambda: defaultdict(list))
    for at, values in hours.items():
        group = groups[key(at)]
        group["__hours__"].append(at)
        for measure, value in values.items():
            if value is not None:
                group[measure].append(value)
    return groups


def close(mart_value, expected) -> bool:
    """Equal, or equal to 12 decimals (PostgreSQL rounds a numeric mean or deviation at some scale)."""
    if mart_value is None or expected is None:
        return mart_value is None and expected is None
    return abs(Decimal(mart_value) - Decimal(expected)) < Decimal("1e-12")


@pytest.fixture(scope="module")
def built(server: db.ConnectionSettings, tmp_path_factory) -> db.ConnectionSettings:
    tmp = tmp_path_factory.mktemp("values")
    with scratch_database(server, "wi_test_mart_values") as database:
        with serve_mirror(tmp / "mirror") as mirror:
            hamburg = ",".join(name for name, (station, *_) in ARCHIVES.items() if station == HAMBURG)
            load_ok(mirror, database, tmp / "pipelines", "--products", hamburg, "--stations", str(HAMBURG))
            load_ok(mirror, database, tmp / "pipelines", "--products", "moisture,dew_point", "--stations",
                    str(GROSSENKNETEN))  # fmt: skip
        # dim_station needs its snapshot and dim_location its seed: `dbt build` makes those
        dbt_ok(database, tmp / "target", "run", "--exclude", "dim_station", "dim_location")
        yield database


@pytest.mark.parametrize("mart", QUARTERLY)
def test_a_quarterly_mart_equals_an_independent_computation(built, mart: str) -> None:
    data, main, measures, extra = QUARTERLY[mart]
    station, relative, columns = ARCHIVES[data]
    expected = grouped(hours_of(relative, columns), quarter_of)
    names = ["year", "quarter", "observation_count", "expected_hours", "coverage_ratio"]
    names += [f"{measure}_{statistic}" for measure in measures for statistic in ("mean", "min", "max", "stddev")]
    names += list(extra)
    rows = query(built, f"select {', '.join(names)} from marts.{mart} where station_id = %s", (station,))
    assert sorted((row[0], row[1]) for row in rows) == sorted(expected), "other quarters than the file's"
    mismatches = []
    for row in rows:
        got = dict(zip(names, row, strict=True))
        group = expected[(got["year"], got["quarter"])]
        want = {
            "observation_count": len(group[main]),
            "expected_hours": hours_in_quarter(got["year"], got["quarter"]),
            "coverage_ratio": round(Decimal(len(group[main])) / hours_in_quarter(got["year"], got["quarter"]), 6),
        }
        for measure in measures:
            values = group[measure]
            want[f"{measure}_mean"] = statistics.mean(values) if values else None
            want[f"{measure}_min"] = min(values) if values else None
            want[f"{measure}_max"] = max(values) if values else None
            want[f"{measure}_stddev"] = statistics.stdev(values) if len(values) > 1 else None
        for column, (function, measure) in extra.items():
            values = group[measure]
            counts = function not in (sum, max, statistics.mean)  # an hour count is 0 over no values, the rest NULL
            want[column] = function(values) if values else (0 if counts else None)
        mismatches += [(got["year"], got["quarter"], column, got[column], value)
                       for column, value in want.items() if not close(got[column], value)]  # fmt: skip
    assert mismatches == []
    assert len(rows) >= 2 and sum(row[2] for row in rows) > 1000  # the comparison covered real data


def test_the_daily_fact_equals_an_independent_computation(built) -> None:
    expected: dict[tuple[int, date], dict] = {}
    for data, (station, relative, columns) in ARCHIVES.items():
        for day, group in grouped(hours_of(relative, columns), lambda at: at.date()).items():
            row = expected.setdefault((station, day), {column: 0 if column in COUNTS else None for column in DAILY})
            for column, (source, function, measure) in DAILY.items():
                if source == data and group[measure]:
                    row[column] = function(group[measure])
    rows = query(built, f"select station_id, observed_date, {', '.join(DAILY)} from marts.fct_daily_weather")
    got = {(row[0], row[1]): dict(zip(DAILY, row[2:], strict=True)) for row in rows}
    assert sorted(got) == sorted(expected)
    mismatches = [(key, column, values[column], expected[key][column])
                  for key, values in got.items() for column in DAILY
                  if not close(values[column], expected[key][column])]  # fmt: skip
    assert mismatches[:20] == []
    assert len(got) > 1000  # Hamburg 2018-2021 and Großenkneten 2021-2023, day by day
