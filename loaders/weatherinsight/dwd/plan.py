"""Decide which DWD files a load fetches, from the server's listings and the loader state."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from urllib.parse import urljoin

import requests

from weatherinsight.dwd.listing import check_reachable, complete_versions, list_directory
from weatherinsight.dwd.parser import ARCHIVE_NAME, TimeWindow
from weatherinsight.dwd.settings import HOURLY_PATH, RELEASES, Product
from weatherinsight.dwd.tasks import FileTask, missing_windows

log = logging.getLogger(__name__)


@dataclass
class LoadPlan:
    """Files to fetch and files skipped because the loaded version already covers the window."""

    tasks: list[FileTask] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stations_seen: set[int] = field(default_factory=set)


def load_window(start: date | None, end: date | None) -> TimeWindow:
    """The UTC hours [start, end) of two days (either may be None: unbounded)."""

    def as_utc(day: date | None) -> datetime | None:
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) if day else None

    return TimeWindow(as_utc(start), as_utc(end))


def hourly_root(base_url: str) -> str:
    """The URL of the hourly observations below DWD's open-data root (or a mirror of it)."""
    return urljoin(base_url.rstrip("/") + "/", HOURLY_PATH)


def plan_load(
    session: requests.Session,
    base_url: str,
    products: Iterable[Product],
    stations: set[int] | None,
    window: TimeWindow,
    known_files: Mapping[str, dict],
) -> LoadPlan:
    """List each product's ``historical`` and ``recent`` folders and keep what is new or changed.

    An archive is fetched when its version (size, Last-Modified) is new, or when part of
    ``window`` was never loaded from that version; historical archives whose period lies outside
    the window are not fetched at all. Station lists are fetched once per version.
    """
    root = hourly_root(base_url)
    check_reachable(session, root)
    plan = LoadPlan()
    for product in products:
        for release in RELEASES:
            folder = f"{product.folder}/{release}/"
            candidates = []
            for remote in list_directory(session, urljoin(root, folder)):
                if remote.name == product.station_list_name:
                    candidates.append(FileTask("station_list", product, release, remote, folder + remote.name))
                    continue
                match = ARCHIVE_NAME.match(remote.name)
                if match is None or match["code"] != product.code:
                    continue
                station_id = int(match["station"])
                plan.stations_seen.add(station_id)
                if stations is not None and station_id not in stations:
                    continue
                if match["first"] and not window.overlaps_days(
                    datetime.strptime(match["first"], "%Y%m%d").date(),
                    datetime.strptime(match["last"], "%Y%m%d").date(),
                ):
                    continue
                candidates.append(
                    FileTask("archive", product, release, remote, folder + remote.name, station_id, [window])
                )
            for task in _keep_changed(session, candidates, known_files):
                plan.tasks.append(task)
            plan.unchanged.extend(
                task.path for task in candidates if task.path not in {kept.path for kept in plan.tasks}
            )
    return plan


def _keep_changed(
    session: requests.Session, candidates: list[FileTask], known_files: Mapping[str, dict]
) -> list[FileTask]:
    remotes = complete_versions(session, [task.remote for task in candidates])
    kept = []
    for task, remote in zip(candidates, remotes, strict=True):
        task.remote = remote
        known = known_files.get(task.path)
        same_version = known is not None and {k: known.get(k) for k in ("size", "last_modified")} == remote.version
        if task.kind == "station_list":
            if not same_version:
                kept.append(task)
            continue
        window = task.windows[0]
        task.windows = missing_windows(window, known.get("ranges", []) if same_version else [])
        if task.windows:
            kept.append(task)
    return kept
