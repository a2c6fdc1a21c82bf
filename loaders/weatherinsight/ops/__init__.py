"""Backfill operations: the window ledger, plans, runs, restores and reports (status, validate, doctor)."""
