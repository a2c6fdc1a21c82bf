"""Operations on the warehouse, grouped by job and layered (each imports only the ones before it):
``dbt`` (running dbt: the CLI, the in-process session, the worker pool), ``backfill`` (plans, windows,
audit and publish, the ledger), ``reports`` (status, validate, doctor, explain, monitor), then
``update`` (the everyday run) and ``backup``."""
