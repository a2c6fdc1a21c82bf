"""A synthetic DWD-shaped mirror at any scale: stations × years × products, in DWD's own formats.

Each station gets, per product, a `historical` archive (from `years` back to the end of the year
before `last_day`, quality level 5 in its first half and 3 after) and a `recent` archive (the last
500 days, quality level 1, values a little off) — so the two releases overlap by several months
with different quality levels and values, as on DWD's server. Archives hold a `produkt_*` file
(semicolon-separated, fixed-width fields, `-999` for missing values, `eor` terminators) and a
`Metadaten_Parameter_*` file; each folder has its fixed-width latin-1 station list.

Usage: python bench/synth_mirror.py OUT_DIR [--stations 10] [--years 5] [--products air_temperature,wind]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from weatherinsight.dwd.settings import HOURLY_PATH, PRODUCTS, Product

RECENT_DAYS = 500
#: plausible value ranges per DWD column (low, high); anything else gets 0..100
RANGES = {
    "TT_TU": (-15.0, 35.0), "RF_TU": (30.0, 100.0), "R1": (0.0, 4.0), "RS_IND": (0, 1), "WRTR": (0, 9),
    "F": (0.0, 18.0), "D": (10, 360), "P": (980.0, 1040.0), "P0": (960.0, 1020.0), "V_N": (0, 8),
    "ABSF_STD": (2.0, 20.0), "VP_STD": (3.0, 30.0), "TF_STD": (-10.0, 25.0), "P_STD": (960.0, 1020.0),
    "TT_STD": (-15.0, 35.0), "RF_STD": (30.0, 100.0), "TD_STD": (-20.0, 20.0), "TT": (-15.0, 35.0),
    "TD": (-20.0, 20.0), "SD_SO": (0.0, 60.0),
}  # fmt: skip
PARAMETER_HEADER = (
    "Stations_ID;Von_Datum;Bis_Datum;Stationsname;Parameter;Parameterbeschreibung;Einheit;"
    "Datenquelle (Strukturversion=SV);Zusatz-Info;Besonderheiten;Literaturhinweis;eor;"
)


@dataclass
class MirrorSummary:
    root: Path
    files: int = 0
    bytes: int = 0
    rows_by_product: dict[str, int] = field(default_factory=dict)
    archives: list[Path] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.rows_by_product.values())


def _value(column: str, kind: str, hour_index: int, rng: random.Random, offset: float) -> str:
    low, high = RANGES.get(column, (0.0, 100.0))
    if rng.random() < 0.002:
        return "-999"
    if kind == "text":
        return "    I" if rng.random() < 0.8 else "    P"
    seasonal = 0.5 + 0.4 * math.sin(hour_index / 1394.0) + 0.1 * rng.random()
    value = low + (high - low) * min(max(seasonal, 0.0), 1.0)
    if kind == "int":
        return f"{int(round(value)):>4d}"
    # the station's offset moves the value, never out of its plausible range (the marts' range tests)
    return f"{min(max(value + offset, low), high):>6.1f}"


def _produkt(product: Product, station: int, first: datetime, last: datetime, quality, offset: float, seed: int):
    """The product file's lines for [first, last] (hourly)."""
    rng = random.Random(seed)
    columns = [measure.source_column for measure in product.measures]
    lines = [";".join(["STATIONS_ID", "MESS_DATUM", product.quality_column, *columns, "eor"])]
    hour = first
    index = int(first.timestamp() // 3600)
    step = timedelta(hours=1)
    while hour <= last:
        values = [_value(m.source_column, m.kind, index, rng, offset) for m in product.measures]
        lines.append(f"{station:>11};{hour:%Y%m%d%H};{quality(hour):>5};{';'.join(values)};eor")
        hour += step
        index += 1
    return lines


def _parameters(product: Product, station: int, first: date, last: date) -> str:
    lines = [PARAMETER_HEADER]
    for measure in product.measures:
        lines.append(
            f"{station};{first:%Y%m%d};{last:%Y%m%d};Synthetic {station};{measure.source_column};synthetic;-;"
            "synthetic data shaped like DWD's;Stundenwerte in UTC;;;eor;"
        )
    lines.append("Legende: FT  = Folgetag; GZ = Gesetzliche Zeit")
    return "\n".join(lines) + "\n"


def _station_list(product: Product, stations: list[int], first: date, last: date) -> bytes:
    rows = [
        "Stations_id von_datum bis_datum Stationshoehe geoBreite geoLaenge Stationsname Bundesland",
        "----------- --------- --------- ------------- --------- --------- ----------------------------------------- "
        "----------",
    ]
    for index, station in enumerate(stations):
        name = f"Synthetisch {station} Süd"
        line = (
            f"{station:05d} {first:%Y%m%d} {last:%Y%m%d} {50 + index % 900:>14} {47.5 + (index % 70) / 10:>9.4f} "
            f"{6.0 + (index % 90) / 10:>9.4f} {name:<41}"
        )
        rows.append(f"{line:<102}Niedersachsen")
    return ("\r\n".join(rows) + "\r\n").encode("latin-1")


def _write_archive(path: Path, members: dict[str, str], stamp: datetime) -> int:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, text in members.items():
            info = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("latin-1"))
    return path.stat().st_size


def generate(
    root: Path,
    stations: int,
    years: int,
    products: list[str],
    last_day: date = date(2024, 12, 31),
    first_station: int = 100,
    seed: int = 7,
    listed_stations: list[int] | None = None,
) -> MirrorSummary:
    """Write the mirror below ``root`` (laid out like https://opendata.dwd.de/); the station lists
    name ``listed_stations`` (default: the stations written)."""
    summary = MirrorSummary(root)
    ids = [first_station + index for index in range(stations)]
    listed = sorted(set(listed_stations or []) | set(ids))
    start = date(last_day.year - years + 1, 1, 1)
    historical_end = date(last_day.year - 1, 12, 31)
    recent_start = last_day - timedelta(days=RECENT_DAYS - 1)
    midpoint = start + (historical_end - start) / 2
    utc = timezone.utc
    for name in products:
        product = PRODUCTS[name]
        code = product.code.lower()
        summary.rows_by_product[name] = 0
        for release in ("historical", "recent"):
            folder = root / HOURLY_PATH / product.folder / release
            folder.mkdir(parents=True, exist_ok=True)
            (folder / product.station_list_name).write_bytes(_station_list(product, listed, start, last_day))
            summary.files += 1
        for station in ids:
            for release, first, last in (
                ("historical", start, historical_end),
                ("recent", recent_start, last_day),
            ):
                if last < first:
                    continue
                if release == "historical":
                    quality = lambda hour: 5 if hour.date() < midpoint else 3  # noqa: E731
                    offset, archive_name = (
                        0.0,
                        f"stundenwerte_{product.code}_{station:05d}_{first:%Y%m%d}_{last:%Y%m%d}_hist.zip",
                    )
                else:
                    quality = lambda hour: 1  # noqa: E731
                    offset, archive_name = 0.1, f"stundenwerte_{product.code}_{station:05d}_akt.zip"
                lines = _produkt(
                    product,
                    station,
                    datetime(first.year, first.month, first.day, tzinfo=utc),
                    datetime(last.year, last.month, last.day, 23, tzinfo=utc),
                    quality,
                    offset,
                    seed + station * 7 + (release == "recent"),
                )
                members = {
                    f"Metadaten_Parameter_{code}_stunde_{station:05d}.txt": _parameters(product, station, first, last),
                    f"produkt_{code}_stunde_{first:%Y%m%d}_{last:%Y%m%d}_{station:05d}.txt": "\r\n".join(lines)
                    + "\r\n",
                }
                path = root / HOURLY_PATH / product.folder / release / archive_name
                stamp = datetime(last_day.year, last_day.month, last_day.day, 8, 30) if release == "recent" else (
                    datetime(last_day.year, 3, 15, 9, 0)
                )  # fmt: skip
                summary.bytes += _write_archive(path, members, stamp)
                summary.files += 1
                summary.archives.append(path)
                summary.rows_by_product[name] += len(lines) - 1
    return summary


def generate_listed(
    root: Path, product_name: str, listing: bytes, fraction: float = 1.0, stations: int | None = None, seed: int = 7
) -> MirrorSummary:
    """A mirror of one product shaped by DWD's real station list ``listing``: every listed station
    (or every n-th, for ``fraction`` or ``stations``) with its real first and last day. A station
    still reporting at the list's newest day gets a ``recent`` archive of its last 500 days (quality
    level 1) and a ``historical`` one up to the end of the year before (quality 3); a closed station
    a historical archive of its whole span. The list itself is served as it is."""
    from weatherinsight.dwd.stations import parse_station_list

    product = PRODUCTS[product_name]
    code = product.code.lower()
    rows, _ = parse_station_list(listing)
    rows = sorted(
        (row for row in rows if row.get("first_observed_on") and row.get("last_observed_on")),
        key=lambda row: row["station_id"],
    )
    step = max(1, round(len(rows) / stations)) if stations else max(1, round(1 / fraction))
    chosen = rows[::step][:stations] if stations else rows[::step]
    newest = max(row["last_observed_on"] for row in rows)
    summary = MirrorSummary(root, rows_by_product={product_name: 0})
    for release in ("historical", "recent"):
        folder = root / HOURLY_PATH / product.folder / release
        folder.mkdir(parents=True, exist_ok=True)
        (folder / product.station_list_name).write_bytes(listing)
    utc = timezone.utc
    for row in chosen:
        station, first, last = row["station_id"], row["first_observed_on"], row["last_observed_on"]
        active = last >= newest - timedelta(days=7)
        spans = []
        if active:
            recent_start = max(first, newest - timedelta(days=RECENT_DAYS - 1))
            spans.append(("recent", recent_start, newest))
            spans.append(("historical", first, min(last, date(newest.year - 1, 12, 31))))
        else:
            spans.append(("historical", first, last))
        for release, start, end in spans:
            if end < start:
                continue
            recent = release == "recent"
            lines = _produkt(
                product,
                station,
                datetime(start.year, start.month, start.day, tzinfo=utc),
                datetime(end.year, end.month, end.day, 23, tzinfo=utc),
                (lambda hour: 1) if recent else (lambda hour: 3),
                0.1 if recent else 0.0,
                seed + station * 7 + recent,
            )
            name = (
                f"stundenwerte_{product.code}_{station:05d}_akt.zip"
                if recent
                else f"stundenwerte_{product.code}_{station:05d}_{start:%Y%m%d}_{end:%Y%m%d}_hist.zip"
            )
            members = {
                f"Metadaten_Parameter_{code}_stunde_{station:05d}.txt": _parameters(product, station, start, end),
                f"produkt_{code}_stunde_{start:%Y%m%d}_{end:%Y%m%d}_{station:05d}.txt": "\r\n".join(lines) + "\r\n",
            }
            path = root / HOURLY_PATH / product.folder / release / name
            stamp = datetime(newest.year, newest.month, newest.day, 8, 30)
            summary.bytes += _write_archive(path, members, stamp)
            summary.files += 1
            summary.archives.append(path)
            summary.rows_by_product[product_name] += len(lines) - 1
    return summary


def _rewrite_archive(path: Path, change, stamp: datetime) -> None:
    """Publish a new version of an archive: ``change(fields)`` edits each data line's fields (in
    place); the archive gets DWD's new time stamp inside and a later Last-Modified on the server."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info).decode("latin-1") for info in archive.infolist()}
    for name, text in members.items():
        if name.startswith("produkt_"):
            lines = text.split("\r\n")
            for index in range(1, len(lines)):
                if lines[index]:
                    fields = lines[index].split(";")
                    change(fields)
                    lines[index] = ";".join(fields)
            members[name] = "\r\n".join(lines)
    _write_archive(path, members, stamp)
    later = path.stat().st_mtime + 3600
    os.utime(path, (later, later))


def rerelease_historical(summary: MirrorSummary, raised_share: float = 0.1, seed: int = 11) -> int:
    """DWD re-publishes every station's historical archive: new version stamps, the same values, the
    quality level of about ``raised_share`` of the hours raised to 10. Returns the archives rewritten."""
    rng = random.Random(seed)

    def raise_some(fields: list[str]) -> None:
        if rng.random() < raised_share:
            fields[2] = f"{10:>5}"

    archives = [path for path in summary.archives if path.name.endswith("_hist.zip")]
    for path in archives:
        _rewrite_archive(path, raise_some, datetime(2025, 3, 16, 9, 0))
    return len(archives)


def correct_month(summary: MirrorSummary, station: int, product: str, month: str) -> int:
    """DWD corrects one month (``YYYYMM``) of one station's recent archive: its values change by
    0.5 (a new version of the archive). Returns the hours changed."""
    code = PRODUCTS[product].code
    path = next(p for p in summary.archives if p.name == f"stundenwerte_{code}_{station:05d}_akt.zip")
    changed = [0]

    def shift(fields: list[str]) -> None:
        if fields[1].strip().startswith(month) and fields[3].strip() != "-999":
            fields[3] = f"{float(fields[3]) + 0.5:>{len(fields[3])}.1f}"
            changed[0] += 1

    _rewrite_archive(path, shift, datetime(2025, 1, 2, 8, 30))
    return changed[0]


@dataclass
class Regeneration:
    """What one simulated day of DWD's regeneration changed, counted from the files themselves."""

    archives: int = 0
    new_hours: int = 0
    dropped_hours: int = 0
    revised_hours: int = 0
    #: per archive (file name): the hours (MESS_DATUM) the new version adds or revises
    changed: dict[str, set[str]] = field(default_factory=dict)


def middle_hour(path: Path) -> str:
    """MESS_DATUM of the hour in the middle of an archive's product file."""
    with zipfile.ZipFile(path) as archive:
        name = next(member for member in archive.namelist() if member.startswith("produkt_"))
        lines = [line for line in archive.read(name).decode("latin-1").splitlines()[1:] if line.strip()]
    return lines[len(lines) // 2].split(";")[1].strip()


def regenerate_recent(hourly: Path, stamp: datetime, revise: dict[str, str] | None = None) -> Regeneration:
    """DWD's daily regeneration of every ``recent`` archive below ``hourly``: each archive's rolling
    window gains the day after its last one (the last day's values again, 24 hours later) and loses
    its first day (those hours leave the file; the warehouse keeps what it has), the product file
    is renamed to its new span, and the archive gets ``stamp`` inside and a later Last-Modified. For
    the archives named in ``revise`` (file name -> MESS_DATUM) that hour's quality level is revised
    (1 becomes 3, anything else 1), as DWD's checks do. Works on real and synthetic archives alike."""
    revise = revise or {}
    done = Regeneration()
    for path in sorted(hourly.glob("*/recent/*_akt.zip")):
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: archive.read(info).decode("latin-1") for info in archive.infolist()}
        name = next(member for member in members if member.startswith("produkt_"))
        newline = "\r\n" if "\r\n" in members[name] else "\n"
        header, *lines = [line for line in members[name].split(newline) if line]
        rows = [line.split(";") for line in lines]
        first_day, last_day = rows[0][1].strip()[:8], rows[-1][1].strip()[:8]
        next_day = (datetime.strptime(last_day, "%Y%m%d") + timedelta(days=1)).strftime("%Y%m%d")
        added = []
        for fields in rows:
            if fields[1].strip().startswith(last_day):
                copy = list(fields)
                copy[1] = next_day + fields[1].strip()[8:]
                added.append(copy)
        kept = [fields for fields in rows if not fields[1].strip().startswith(first_day)]
        changed = {fields[1].strip() for fields in added}
        hour = revise.get(path.name)
        for fields in kept if hour else []:
            if fields[1].strip() == hour:
                width = len(fields[2])
                fields[2] = f"{3 if fields[2].strip() == '1' else 1:>{width}}"
                changed.add(fields[1].strip())
                done.revised_hours += 1
        body = [";".join(fields) for fields in kept + added]
        span_start = kept[0][1].strip()[:8]
        new_name = re.sub(r"_\d{8}_\d{8}_", f"_{span_start}_{next_day}_", name)
        del members[name]
        members[new_name] = newline.join([header, *body]) + newline
        _write_archive(path, members, stamp)
        later = max(path.stat().st_mtime, stamp.timestamp()) + 60
        os.utime(path, (later, later))
        done.archives += 1
        done.new_hours += len(added)
        done.dropped_hours += len(rows) - len(kept)
        done.changed[path.name] = changed
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--stations", type=int, default=10)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--products", default="air_temperature")
    arguments = parser.parse_args()
    summary = generate(arguments.out, arguments.stations, arguments.years, arguments.products.split(","))
    print(f"{summary.files} files, {summary.bytes / 2**20:.1f} MiB, {summary.rows:,} rows in {arguments.out}")


if __name__ == "__main__":
    main()
