"""The parser on every real file quirk listed in sample_data/PROVENANCE.md."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from weatherinsight.dwd import parser
from weatherinsight.dwd.parser import (
    PRE_2017_LAYOUT,
    ParseError,
    TimeWindow,
    parse_mez_periods,
    parse_product_file,
)
from weatherinsight.dwd.settings import HOURLY_PATH, PRODUCTS
from weatherinsight.dwd.stations import parse_station_list

from conftest import SAMPLE_MIRROR

pytestmark = pytest.mark.quick

HOURLY = SAMPLE_MIRROR / HOURLY_PATH
UTC = timezone.utc


EVERYTHING = (TimeWindow(),)


def parse_archive(relative: str, product: str, station: int, windows=EVERYTHING) -> tuple[pa.Table, list]:
    with zipfile.ZipFile(HOURLY / relative) as archive:
        names = archive.namelist()
        parameters = [n for n in names if n.startswith("Metadaten_Parameter") and n.endswith(".txt")]
        mez = parse_mez_periods(archive.read(parameters[0]).decode("latin-1")) if parameters else []
        member = next(n for n in names if n.startswith("produkt_"))
        batches = list(parse_product_file(archive.open(member), PRODUCTS[product], station, mez, windows))
    rejects = [reject for batch in batches for reject in batch.rejects]
    return pa.concat_tables([batch.table for batch in batches]), rejects


@pytest.mark.parametrize(
    ("relative", "product", "station", "rows"),
    [
        # padded headers: RR `  R1`, FF `   F;   D`, P0 `   P;  P0`, N `V_N_I; V_N`, TD `  TT;  TD`
        ("precipitation/recent/stundenwerte_RR_00044_akt.zip", "precipitation", 44, 13200),
        ("wind/recent/stundenwerte_FF_01975_akt.zip", "wind", 1975, 13200),
        ("pressure/recent/stundenwerte_P0_01975_akt.zip", "pressure", 1975, 13200),
        ("cloudiness/recent/stundenwerte_N_01975_akt.zip", "cloud_cover", 1975, 13187),
        ("dew_point/recent/stundenwerte_TD_00044_akt.zip", "dew_point", 44, 13200),
        # unpadded headers
        ("air_temperature/recent/stundenwerte_TU_00044_akt.zip", "air_temperature", 44, 13200),
        ("moisture/recent/stundenwerte_TF_00044_akt.zip", "moisture", 44, 13012),
        ("sun/recent/stundenwerte_SD_00044_akt.zip", "sun", 44, 10464),
    ],
)
def test_every_product_parses_without_rejects(relative: str, product: str, station: int, rows: int) -> None:
    table, rejects = parse_archive(relative, product, station)
    assert rejects == []
    assert table.num_rows == rows
    assert set(table["station_id"].to_pylist()) == {station}  # `44` inside the data, `00044` in names
    assert table.schema.field("observed_at").type == pa.timestamp("us", tz="UTC")


def test_missing_values_become_null() -> None:
    # Ulm hist: RF_TU is -999 three times, TT_TU never (PROVENANCE per-file details)
    table, _ = parse_archive(
        "air_temperature/historical/stundenwerte_TU_15444_20140901_20181231_hist.zip", "air_temperature", 15444
    )
    assert table.num_rows == 37923
    assert table["rf_tu"].null_count == 3
    assert table["tt_tu"].null_count == 0
    assert -999 not in table["rf_tu"].to_pylist()


def test_lf_and_crlf_files_parse_alike() -> None:
    """DWD's own zips hold CRLF files, a copy extracted and zipped again elsewhere may hold LF (the
    Ulm archives of the sample do): the same product file in both line endings gives the same table."""
    relative = "air_temperature/recent/stundenwerte_TU_01975_akt.zip"
    with zipfile.ZipFile(HOURLY / relative) as archive:
        member = next(name for name in archive.namelist() if name.startswith("produkt_"))
        crlf = archive.read(member)
    assert crlf.count(b"\r\n") == crlf.count(b"\n") > 13_000  # DWD's file: every line ends CRLF
    lf = crlf.replace(b"\r\n", b"\n")
    tables = [
        pa.concat_tables(
            batch.table
            for batch in parse_product_file(io.BytesIO(text), PRODUCTS["air_temperature"], 1975, [], EVERYTHING)
        )
        for text in (crlf, lf)
    ]
    assert tables[0].num_rows == crlf.count(b"\n") - 1  # every line but the header
    assert tables[0].equals(tables[1])
    # and the sample's LF archive (Ulm) reads as DWD documents it: 13,200 hours, 63 without a temperature
    ulm, _ = parse_archive("air_temperature/recent/stundenwerte_TU_15444_akt.zip", "air_temperature", 15444)
    assert ulm.num_rows == 13200 and ulm["tt_tu"].null_count == 63


def test_cloud_cover_keeps_its_text_column() -> None:
    table, _ = parse_archive("cloudiness/recent/stundenwerte_N_01975_akt.zip", "cloud_cover", 1975)
    assert set(table["v_n_i"].drop_null().to_pylist()) <= {"P", "I"}
    assert min(table["v_n"].drop_null().to_pylist()) >= -1


def test_sunshine_starts_at_hour_three() -> None:
    table, _ = parse_archive("sun/recent/stundenwerte_SD_00044_akt.zip", "sun", 44)
    assert table["observed_at"][0].as_py() == datetime(2021, 8, 9, 3, tzinfo=UTC)


def test_mez_periods_are_read_from_the_parameter_file() -> None:
    with zipfile.ZipFile(HOURLY / "wind/historical/stundenwerte_FF_02115_19590101_20231231_hist.zip") as archive:
        text = archive.read("Metadaten_Parameter_ff_stunde_02115.txt").decode("latin-1")
    assert parse_mez_periods(text) == [
        (19590101, 19741231),
        (19750101, 19961231),
        (19970101, 20020430),
        (20020601, 20030831),
    ]


def test_mez_hours_are_shifted_to_utc() -> None:
    table, rejects = parse_archive(
        "wind/historical/stundenwerte_FF_02115_19590101_20231231_hist.zip",
        "wind",
        2115,
        windows=[
            TimeWindow(None, datetime(1960, 1, 1, tzinfo=UTC)),
            TimeWindow(datetime(2002, 4, 30, 20, tzinfo=UTC), datetime(2002, 6, 1, 2, tzinfo=UTC)),
        ],
    )
    assert rejects == []
    hours = table["observed_at"].to_pylist()
    # 1959010100 MEZ is 1958-12-31 23:00 UTC
    assert hours[0] == datetime(1958, 12, 31, 23, tzinfo=UTC)
    # MEZ -> UTC on 2002-05-01 leaves a one-hour hole at 23:00 UTC ...
    assert datetime(2002, 4, 30, 22, tzinfo=UTC) in hours
    assert datetime(2002, 4, 30, 23, tzinfo=UTC) not in hours
    # ... and UTC -> MEZ on 2002-06-01 gives 23:00 UTC twice (told apart by source_row_number)
    doubled = [row for row in table.to_pylist() if row["observed_at"] == datetime(2002, 5, 31, 23, tzinfo=UTC)]
    assert len(doubled) == 2 and doubled[0]["source_row_number"] != doubled[1]["source_row_number"]


def test_window_keeps_only_hours_inside() -> None:
    window = TimeWindow(datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 2, 1, tzinfo=UTC))
    table, _ = parse_archive("wind/recent/stundenwerte_FF_01975_akt.zip", "wind", 1975, windows=[window])
    hours = table["observed_at"].to_pylist()
    assert min(hours) >= window.start and max(hours) < window.end
    assert len(hours) == 31 * 24


def product_file(*lines: str) -> io.BytesIO:
    return io.BytesIO(("\r\n".join(lines) + "\r\n").encode("ascii"))


@pytest.mark.parametrize("reader", ["clean chunk", "checked rows"])
def test_implausible_values_are_rejected_and_missing_ones_kept(reader: str) -> None:
    """90 °C and 101 % humidity are quarantined by both readers; -999 (missing) is a NULL, not an outlier."""
    lines = [
        "STATIONS_ID;MESS_DATUM;QN_9;TT_TU;RF_TU;eor",
        "       1975;2021070112;    3;  90.0;  40.0;eor",
        "       1975;2021070113;    3;  24.0; 101.0;eor",
        "       1975;2021070114;    3;-999.0;  55.0;eor",
        "       1975;2021070115;    3; -60.0; 100.0;eor",
    ]
    if reader == "checked rows":
        lines.append("       1975;2021;    3;   5.0;  50.0;eor")  # one malformed row: the chunk is checked
    batches = list(parse_product_file(product_file(*lines), PRODUCTS["air_temperature"], 1975))
    rows = [row for batch in batches for row in batch.table.to_pylist()]
    assert [(row["tt_tu"], row["rf_tu"]) for row in rows] == [(None, 55.0), (-60.0, 100.0)]
    reasons = sorted(reject.reason for batch in batches for reject in batch.rejects if "plausible" in reject.reason)
    assert reasons == ["RF_TU outside the plausible 0..100", "TT_TU outside the plausible -60..60"]


def test_bad_rows_are_rejected_with_a_reason() -> None:
    content = product_file(
        "STATIONS_ID;MESS_DATUM;QN_3;   F;   D;eor",
        "       1975;2021010100;    3;   5.2; 100;eor",
        "       1975;2021010101;    3;   x.y; 100;eor",  # not a number
        "       1975;20210101;    3;   5.0; 100;eor",  # short MESS_DATUM
        "       1975;2021010103;    3;   5.0;eor",  # missing field
        "         44;2021010104;    3;   5.0; 100;eor",  # another station
        "       1975;2021010105;    3;  -999; -999;eor",
    )
    batches = list(parse_product_file(content, PRODUCTS["wind"], 1975))
    table = pa.concat_tables([batch.table for batch in batches])
    rejects = sorted((reject.row_number, reject.reason) for batch in batches for reject in batch.rejects)
    assert table.num_rows == 2
    assert table.to_pylist()[1]["f"] is None and table.to_pylist()[1]["d"] is None
    # each named by its line among the data lines, the line of the wrong shape counted too
    assert rejects == [
        (2, "F is not a float"),
        (3, "MESS_DATUM is not YYYYMMDDHH"),
        (4, "expected 6 fields, found 5"),
        (5, "station id differs from the archive's station 1975"),
    ]
    assert table["source_row_number"].to_pylist() == [1, 6]


@pytest.mark.parametrize("hour", ["2021023100", "2021010125", "2021130100", "0000000000"])
def test_a_ten_digit_mess_datum_that_is_no_hour_is_rejected_and_the_rest_parsed(hour: str) -> None:
    # the clean fast path and the checked path both read ten digits as a MESS_DATUM: the calendar
    # decides (a Feb 31 once stopped the whole load with ArrowInvalid)
    for extra in ("", "   x.y"):  # a clean chunk, and one that takes the row checks
        content = product_file(
            "STATIONS_ID;MESS_DATUM;QN_3;   F;   D;eor",
            "       1975;2021010100;    3;   5.2; 100;eor",
            f"       1975;{hour};    3;   5.0; 100;eor",
            "       1975;2021010102;    3;   4.0; 110;eor",
            *([f"       1975;2021010103;    3;{extra}; 100;eor"] if extra else []),
        )
        batches = list(parse_product_file(content, PRODUCTS["wind"], 1975))
        table = pa.concat_tables([batch.table for batch in batches])
        rejects = [reject for batch in batches for reject in batch.rejects]
        assert table.column("source_row_number").to_pylist() == [1, 3]
        assert (f"1975;{hour};3;5.0;100", "MESS_DATUM is not an hour of the calendar") in [r[:2] for r in rejects]


def test_unexpected_header_is_a_file_error() -> None:
    content = product_file("STATIONS_ID;MESS_DATUM;QN_9;TT_TU;RF_TU;eor", "  1975;2021010100;3;1.0;90;eor")
    with pytest.raises(ParseError, match="unexpected header"):
        list(parse_product_file(content, PRODUCTS["wind"], 1975))


@pytest.mark.parametrize("reader", ["clean chunk", "checked rows"])
def test_a_repeated_or_earlier_hour_is_rejected_and_the_first_kept(reader: str) -> None:
    lines = [
        "STATIONS_ID;MESS_DATUM;QN_3;   F;   D;eor",
        "       1975;2021010100;    3;   5.2; 100;eor",
        "       1975;2021010101;    3;   5.3; 110;eor",
        "       1975;2021010101;    3;   9.9; 120;eor",  # the same hour again
        "       1975;2021010100;    3;   5.2; 100;eor",  # back in time
        "       1975;2021010102;    3;   5.4; 130;eor",
    ]
    if reader == "checked rows":
        lines.append("       1975;2021;    3;   5.0;  50;eor")
    batches = list(parse_product_file(product_file(*lines), PRODUCTS["wind"], 1975, batch_rows=2))
    rows = [(row["observed_at"].hour, row["f"]) for batch in batches for row in batch.table.to_pylist()]
    assert rows == [(0, 5.2), (1, 5.3), (2, 5.4)]
    repeated = [r for batch in batches for r in batch.rejects if r.reason.startswith("MESS_DATUM repeats")]
    assert [(r.line.split(";")[1], r.row_number) for r in repeated] == [("2021010101", 3), ("2021010100", 4)]


def test_the_pre_2017_layout_is_a_file_error_that_says_so() -> None:
    content = product_file(
        "STATIONS_ID;MESS_DATUM;QUALITAETS_NIVEAU;STRUKTUR_VERSION;LUFTTEMPERATUR;REL_FEUCHTE;eor",
        "       1975;2013123123;    3;    1;   4.2;  91.0;eor",
    )
    with pytest.raises(ParseError) as raised:
        list(parse_product_file(content, PRODUCTS["air_temperature"], 1975))
    assert str(raised.value) == PRE_2017_LAYOUT


def test_a_station_line_with_shifted_columns_is_rejected_not_cut_wrongly() -> None:
    listing = (HOURLY / "wind/recent/FF_Stundenwerte_Beschreibung_Stationen.txt").read_bytes().decode("latin-1")
    shifted = re.sub(r"(?m)^(01975 \d{8} \d{8}) {6}", r"\1", listing)  # six characters to the left
    rows, rejects = parse_station_list(shifted.encode("latin-1"))
    assert len(rows) == 524 and 1975 not in {row["station_id"] for row in rows}
    assert [(reject.row_number, reject.reason) for reject in rejects] == [
        (160, "station line's columns are shifted: 'g' where the federal state belongs")
    ]


def test_station_lists_decode_latin1_in_both_layouts() -> None:
    crlf_200, rejects_tu = parse_station_list(
        (HOURLY / "air_temperature/recent/TU_Stundenwerte_Beschreibung_Stationen.txt").read_bytes()
    )
    lf_1000, rejects_ff = parse_station_list(
        (HOURLY / "wind/recent/FF_Stundenwerte_Beschreibung_Stationen.txt").read_bytes()
    )
    assert (len(crlf_200), len(lf_1000)) == (660, 525)
    assert rejects_tu == rejects_ff == []
    names = {row["station_id"]: row for row in crlf_200}
    assert names[44]["station_name"] == "Großenkneten"
    assert names[1975]["station_name"] == "Hamburg-Fuhlsbüttel"
    assert names[15444]["state"] == "Baden-Württemberg"
    zugspitze = {row["station_id"]: row["height_m"] for row in lf_1000 if "Zugspitze" in row["station_name"]}
    assert list(zugspitze.values()) == [2956.0]  # 2965 m in the 2023 lists, 2956 m in the 2024 list


def test_memory_stays_flat_however_large_the_file() -> None:
    """Arrow's peak allocation parsing Helgoland's 567 k-row history once and four times over
    (2.27 M rows, each copy 400 years after the one before) stays within 10 %: the parser holds one
    batch, never the file."""
    import subprocess
    import sys

    script = """
import re, sys, tempfile, zipfile
import pyarrow as pa
from weatherinsight.dwd.parser import parse_product_file
from weatherinsight.dwd.settings import PRODUCTS
archive = zipfile.ZipFile(sys.argv[1])
member = next(name for name in archive.namelist() if name.startswith("produkt_"))
with archive.open(member) as source, tempfile.TemporaryFile() as copy:
    copy.write(source.readline())
    body = source.read()
    for copy_number in range(int(sys.argv[2])):  # each copy 400 years later (same leap years): no hour repeats
        later = lambda match: b"%d" % (int(match.group(1)) + 400 * copy_number)
        copy.write(re.sub(rb"(?<=;)(\\d{4})(?=\\d{6};)", later, body) if copy_number else body)
    del body
    copy.seek(0)
    rows = sum(batch.table.num_rows for batch in parse_product_file(copy, PRODUCTS["wind"], 2115))
print(rows, pa.default_memory_pool().max_memory())
"""
    archive = HOURLY / "wind/historical/stundenwerte_FF_02115_19590101_20231231_hist.zip"
    peaks = {}
    for copies in (1, 4):
        result = subprocess.run([sys.executable, "-c", script, str(archive), str(copies)],
                                capture_output=True, text=True, check=True)  # fmt: skip
        rows, peak = map(int, result.stdout.split())
        assert rows == 567298 * copies
        peaks[copies] = peak
    assert peaks[4] <= peaks[1] * 1.1, peaks


ALL_ARCHIVES = sorted(path.relative_to(HOURLY).as_posix() for path in HOURLY.rglob("stundenwerte_*.zip"))
FOLDER_PRODUCT = {product.folder: name for name, product in PRODUCTS.items()}


@pytest.mark.parametrize("relative", ALL_ARCHIVES)
def test_clean_chunks_read_straight_into_types_as_the_row_checks_read_them(relative: str, monkeypatch) -> None:
    """Every sample archive gives the same table and rejects whether its clean chunks are read
    straight into typed columns or checked field by field."""
    product = FOLDER_PRODUCT[relative.split("/")[0]]
    station = int(relative.rsplit("/", 1)[1].split("_")[2])
    fast = parse_archive(relative, product, station)
    monkeypatch.setattr(parser, "_clean_batch", lambda *args: None)
    checked = parse_archive(relative, product, station)
    assert fast[0].equals(checked[0]) and fast[1] == checked[1]


@pytest.mark.parametrize("value", ["1e5", "0x10", "+5", "nan", "inf", "5.", ".5", "-.5", "", "1.2.3", "12:00"])
def test_a_number_is_read_alike_by_both_readers(value: str) -> None:
    """Odd number forms in a measure are accepted or rejected alike in a clean-looking chunk (read
    straight into types) and beside a bad row (the chunk is checked field by field)."""
    header = "STATIONS_ID;MESS_DATUM;QN_3;   F;   D;eor"
    odd = f"       1975;2021010101;    3;{value:>6}; 100;eor"
    alone = list(parse_product_file(product_file(header, odd), PRODUCTS["wind"], 1975))
    bad = "       1975;2021;    3;   5.0; 100;eor"
    with_bad = list(parse_product_file(product_file(header, odd, bad), PRODUCTS["wind"], 1975))
    rows = [row for batch in alone for row in batch.table.to_pylist()]
    assert rows == [row for batch in with_bad for row in batch.table.to_pylist()]
    assert len(rows) == (1 if value in ("5.", ".5") else 0)  # -.5 reads, but no wind is that slow
    reasons = [reject.reason for batch in alone for reject in batch.rejects]
    assert sorted(reasons + ["MESS_DATUM is not YYYYMMDDHH"]) == sorted(
        reject.reason for batch in with_bad for reject in batch.rejects
    )
