"""Backfill operations: a request (products, stations, window) becomes a plan of windows
(``request``, ``sources``, ``plan``, ``states``, ``catalogue``), each built into an audit schema and
tested (``build``), then published under the writer locks (``locks``, ``publish``); ``run`` drives a
whole run, ``restore`` puts a published window back. The ledger (``ledger``) records every run and
window, and ``changes`` the change tracking the models keep. Imports ``weatherinsight.ops.dbt`` and
the sources' settings; nothing in ``reports`` or ``update``."""
