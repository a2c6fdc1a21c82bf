"""One router per topic: features, reference (stations, locations), ledger (runs, dataset versions),
coverage, health."""
