"""Errors of the backfill operations that end a command with one readable line."""

from __future__ import annotations


class BackfillFailed(RuntimeError):
    """The operation could not go on (raw load failed, dbt could not prepare the project, a restore
    was refused…); the ledger says what is done."""
