"""Find and fetch DWD files over HTTP.

Directory listings are read from the server itself: DWD's open-data server (an autoindex page
with name, modification time and size per file) and the plain listing of
``python -m http.server`` (names only; size and Last-Modified then come from a HEAD request).
Downloads retry with backoff through dlt's requests helper and stream to a temporary file.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import IO
from urllib.parse import unquote, urljoin

import requests
from dlt.sources.helpers.requests import Client

from weatherinsight.dwd.settings import (
    DEFAULT_HTTP_ATTEMPTS,
    DEFAULT_HTTP_BACKOFF_SECONDS,
    http_timeout,
    source_config,
)

log = logging.getLogger(__name__)

_ENTRY = re.compile(
    r'<a href="(?P<href>[^"?/][^"]*)">[^<]*</a>'
    r"(?:\s+(?P<stamp>\d{2}-[A-Za-z]{3}-\d{4} \d{2}:\d{2})\s+(?P<size>\d+|-))?"
)


class SourceUnreachable(RuntimeError):
    """The base URL cannot be reached at all."""


@dataclass(frozen=True)
class RemoteFile:
    """A file on the server as its listing describes it."""

    url: str
    name: str
    size: int | None
    last_modified: datetime | None

    @property
    def version(self) -> dict:
        """What identifies this delivery in loader state: unchanged version = nothing to fetch."""
        stamp = self.last_modified.isoformat() if self.last_modified else None
        return {"size": self.size, "last_modified": stamp}


def make_client(max_attempts: int | None = None, backoff_factor: float | None = None) -> requests.Session:
    """An HTTP session that retries connection errors, timeouts and 429/5xx answers with exponential
    backoff, waiting at least as long as a ``Retry-After`` header asks (attempts, backoff and read
    timeout from dlt's config unless given). Every request it sends has the configured timeouts."""
    attempts = max_attempts or source_config("http_attempts", DEFAULT_HTTP_ATTEMPTS)
    backoff = backoff_factor or source_config("http_backoff_seconds", DEFAULT_HTTP_BACKOFF_SECONDS)
    client = Client(
        request_timeout=http_timeout(),
        request_max_attempts=attempts,
        request_backoff_factor=backoff,
        raise_for_status=True,
    )
    session = client.session
    # a download's body is fetched again as often (see download())
    session.max_attempts, session.backoff_seconds = attempts, backoff
    return session


def check_reachable(session: requests.Session, url: str) -> None:
    """Raise :class:`SourceUnreachable` with one readable line when ``url`` cannot be listed."""
    try:
        session.get(url)
    except requests.RequestException as error:
        reason = type(error).__name__
        if isinstance(error, requests.HTTPError) and error.response is not None:
            reason = f"HTTP {error.response.status_code}"
        raise SourceUnreachable(f"cannot reach {url} ({reason})") from error


def list_directory(session: requests.Session, url: str) -> list[RemoteFile]:
    """List the files (not sub-folders) of one directory; a folder the server lacks lists as empty."""
    try:
        response = session.get(url)
    except requests.HTTPError as error:
        if error.response is not None and error.response.status_code == 404:
            log.info("no folder %s on the server", url)
            return []
        raise
    files = []
    for match in _ENTRY.finditer(response.text):
        name = unquote(match["href"])
        if name.endswith("/"):
            continue
        size = int(match["size"]) if match["size"] and match["size"].isdigit() else None
        stamp = (
            datetime.strptime(match["stamp"], "%d-%b-%Y %H:%M").replace(tzinfo=timezone.utc) if match["stamp"] else None
        )
        files.append(RemoteFile(urljoin(url, match["href"]), name, size, stamp))
    return files


def complete_versions(session: requests.Session, files: list[RemoteFile]) -> list[RemoteFile]:
    """Fill in size and Last-Modified with HEAD requests where the listing did not give them."""
    completed = []
    for remote in files:
        if remote.size is None or remote.last_modified is None:
            head = session.head(remote.url, allow_redirects=True)
            length = head.headers.get("Content-Length")
            modified = head.headers.get("Last-Modified")
            remote = RemoteFile(
                remote.url,
                remote.name,
                int(length) if length else remote.size,
                parsedate_to_datetime(modified).astimezone(timezone.utc) if modified else remote.last_modified,
            )
        completed.append(remote)
    return completed


class BrokenBody(requests.exceptions.RequestException):
    """An answer whose status was fine but whose body broke off, stalled past the read timeout or had
    another size than the listing announced."""


def download(session: requests.Session, remote: RemoteFile, chunk_bytes: int = 1 << 20) -> IO[bytes]:
    """Stream ``remote`` into a temporary file (deleted on close) and return it rewound.

    The request is retried by the session (connection errors, timeouts, 429/5xx); a broken body is
    fetched again here, as many times. Raises :class:`requests.RequestException` when all attempts fail.
    """
    for attempt in range(1, getattr(session, "max_attempts", 1)):
        try:
            return _fetch(session, remote, chunk_bytes)
        except BrokenBody as error:
            log.warning("download of %s broke off (%s); fetching it again", remote.url, error)
            time.sleep(getattr(session, "backoff_seconds", 0) * 2 ** (attempt - 1))
    return _fetch(session, remote, chunk_bytes)


def _fetch(session: requests.Session, remote: RemoteFile, chunk_bytes: int) -> IO[bytes]:
    response = session.get(remote.url, stream=True)  # the session retried the request itself
    target = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller, who closes it
    try:
        with response:
            for chunk in response.iter_content(chunk_bytes):
                target.write(chunk)
    except (
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ConnectionError,
        requests.exceptions.ContentDecodingError,
    ) as error:
        target.close()
        raise BrokenBody(str(error)) from error
    except BaseException:
        target.close()
        raise
    received = target.tell()
    if remote.size is not None and received != remote.size:
        target.close()
        raise BrokenBody(f"received {received} of {remote.size} bytes from {remote.url}")
    target.seek(0)
    return target
