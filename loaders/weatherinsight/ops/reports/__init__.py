"""What an operator reads: ``status`` (coverage matrix and per-day gaps: ``gaps``), ``validate``,
``doctor``, ``explain`` (the deliveries behind one mart row) and ``monitor`` (the HTML page). They
read the warehouse, the ledger and the catalogue of ``weatherinsight.ops.backfill``; they write
nothing."""
