"""The parser of DWD's station lists (``*_Beschreibung_Stationen.txt``): fixed-width lines in
Latin-1, one station each with its first and last day, height, position, name and federal state.
Lines that do not parse are returned as rejects (with their reason)."""

from __future__ import annotations

import re
from datetime import datetime

from weatherinsight.dwd.parser import Reject

STATION_LINE = re.compile(
    r"^(?P<station_id>\d+)\s+(?P<first>\d{8})\s+(?P<last>\d{8})\s+(?P<height>-?\d+(?:\.\d+)?)\s+"
    r"(?P<latitude>-?\d+\.\d+)\s+(?P<longitude>-?\d+\.\d+)\s+(?P<name>.*?)\s*$"
)
#: Offset of the ``Bundesland`` column in the fixed-width station lists.
STATE_OFFSET = 102
#: What that column holds: a line with anything else there has its columns shifted (every name and
#: state would be cut in the wrong place), so it is quarantined instead of read wrongly.
FEDERAL_STATES = frozenset(
    {
        "Baden-Württemberg", "Bayern", "Berlin", "Brandenburg", "Bremen", "Hamburg", "Hessen",
        "Mecklenburg-Vorpommern", "Niedersachsen", "Nordrhein-Westfalen", "Rheinland-Pfalz", "Saarland",
        "Sachsen", "Sachsen-Anhalt", "Schleswig-Holstein", "Thüringen",
    }
)  # fmt: skip


def parse_station_list(content: bytes) -> tuple[list[dict], list[Reject]]:
    """Parse a fixed-width, latin-1 ``*_Stundenwerte_Beschreibung_Stationen.txt`` station list.

    Returns the station rows and the rejected lines with their reason.
    """
    rows: list[dict] = []
    rejects: list[Reject] = []
    lines = content.decode("latin-1").splitlines()
    for number, line in enumerate(lines[2:], start=1):  # after the header line and the dashed line
        if not line.strip():
            continue
        match = STATION_LINE.match(line[:STATE_OFFSET])
        if match is None:
            rejects.append(Reject(line.rstrip(), "station line does not match the fixed-width layout", number))
            continue
        state = line[STATE_OFFSET:].strip()
        if state not in FEDERAL_STATES:
            reason = f"station line's columns are shifted: {state[:30]!r} where the federal state belongs"
            rejects.append(Reject(line.rstrip(), reason, number))
            continue
        rows.append(
            {
                "station_id": int(match["station_id"]),
                "first_observed_on": datetime.strptime(match["first"], "%Y%m%d").date(),
                "last_observed_on": datetime.strptime(match["last"], "%Y%m%d").date(),
                "height_m": float(match["height"]),
                "latitude": float(match["latitude"]),
                "longitude": float(match["longitude"]),
                "station_name": match["name"].strip(),
                "state": state,
            }
        )
    return rows, rejects
