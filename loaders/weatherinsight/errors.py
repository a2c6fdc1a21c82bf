"""Errors every command treats alike."""

from __future__ import annotations


class RequestError(ValueError):
    """A request the user can fix (a malformed date, an unknown product or station, an empty window):
    every command reports it as a usage error, one line and exit code 2, before it changes anything."""
