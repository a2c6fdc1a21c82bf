"""What a load reports: counts for its summary, and callbacks a progress bar draws."""

from __future__ import annotations

from dataclasses import dataclass, field

from weatherinsight.dwd.tasks import FileTask


@dataclass
class LoadStats:
    """Counts a load reports in its summary."""

    files_fetched: int = 0
    files_quarantined: int = 0
    files_failed: list[str] = field(default_factory=list)
    rows_by_table: dict[str, int] = field(default_factory=dict)
    rows_quarantined: int = 0

    def add_rows(self, table: str, rows: int) -> None:
        self.rows_by_table[table] = self.rows_by_table.get(table, 0) + rows


class LoadProgress:
    """Callbacks the source reports to; the CLI draws them as a progress bar."""

    def file_started(self, task: FileTask) -> None: ...

    def rows_parsed(self, rows: int) -> None: ...

    def file_finished(self, task: FileTask) -> None: ...
