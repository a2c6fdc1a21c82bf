"""What a load reports: counts for its summary, and callbacks a progress bar draws."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from weatherinsight.dwd.tasks import FileTask


@dataclass
class LoadStats:
    """Counts a load reports in its summary."""

    files_fetched: int = 0
    files_failed: list[str] = field(default_factory=list)
    rows_by_table: dict[str, int] = field(default_factory=dict)
    rows_quarantined: int = 0
    #: per file that had anything quarantined: how often each reason came up
    quarantined: dict[str, Counter] = field(default_factory=dict)
    #: the files that went to quarantine whole (unreadable, no product file, unknown header…)
    whole_files: set[str] = field(default_factory=set)

    @property
    def files_quarantined(self) -> int:
        """Files that went to quarantine whole."""
        return len(self.whole_files)

    def add_rows(self, table: str, rows: int) -> None:
        self.rows_by_table[table] = self.rows_by_table.get(table, 0) + rows

    def quarantine_file(self, path: str, reason: str) -> None:
        """The whole file went to quarantine (unreadable, no product file, unknown header…)."""
        self.whole_files.add(path)
        self.quarantined.setdefault(path, Counter())[reason] += 1

    def quarantine_rows(self, path: str, reasons: list[str]) -> None:
        """Some rows of the file went to quarantine; the rest was loaded."""
        self.rows_quarantined += len(reasons)
        self.quarantined.setdefault(path, Counter()).update(reasons)


class LoadProgress:
    """Callbacks the source reports to; the CLI draws them as a progress bar."""

    def file_started(self, task: FileTask) -> None: ...

    def rows_parsed(self, rows: int) -> None: ...

    def file_finished(self, task: FileTask) -> None: ...
