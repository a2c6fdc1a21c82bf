"""Render the Reliability table of docs/reliability.md from the fault suite's own record
(logs/reliability.json, written by `make test`), or check that the page shows exactly that record.

    python scripts/reliability_table.py           # rewrite the table in docs/reliability.md
    python scripts/reliability_table.py --check   # exit 1 if docs/reliability.md differs from the record
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "logs" / "reliability.json"
PAGE = REPO / "docs" / "reliability.md"
BEGIN = "<!-- reliability table: scripts/reliability_table.py -->"
END = "<!-- end of reliability table -->"


def table(records: list[dict]) -> str:
    lines = [
        "| fault (test in `tests/python/test_faults.py`, or `test_openmeteo.py` for Open-Meteo) | trials "
        "| rows compared | lost | duplicated | byte-identical to a clean run | how it recovers |",
        "|---|---|---|---|---|---|---|",
    ]
    for record in records:
        lines.append(
            f"| {record['fault']} (`{record['test']}`) | {record['trials']} "
            f"| {record['rows_checked']:,} {record.get('compared', 'raw')} "
            f"| {record['rows_lost']} "
            f"| {record['rows_duplicated']} | {'yes' if record['marts_identical'] else '**no**'} "
            f"| {record['recovery']} |"
        )
    return "\n".join(lines)


def rendered(readme: str, records: list[dict]) -> str:
    head, found, rest = readme.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise SystemExit(f"docs/reliability.md lacks the markers {BEGIN!r} … {END!r}")
    return f"{head}{BEGIN}\n{table(records)}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/reliability.md differs from the record")
    arguments = parser.parse_args()
    if not RECORD.exists():
        print(f"no fault record at {RECORD}: run the fault suite first (make test)", file=sys.stderr)
        return 1
    records = json.loads(RECORD.read_text())
    readme = PAGE.read_text()
    updated = rendered(readme, records)
    if arguments.check:
        if updated != readme:
            print(
                "docs/reliability.md's table differs from the fault suite's record: run "
                "`python scripts/reliability_table.py` and commit docs/reliability.md",
                file=sys.stderr,
            )
            return 1
        return 0
    PAGE.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
