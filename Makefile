# WeatherInsight: `make demo` and `make test` work on a machine that has only Python 3.10+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SPARK_INSTALLED := $(VENV)/.installed-spark

.PHONY: install install-spark browser demo demo-spark test test-quick stress lint pytest bench bench-scale bench-serve bench-spark ci-state ci-slim docs db-up db-down clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

install: $(INSTALLED) ## create .venv and install the project with its dev tools

# the spark extra (dbt-spark, pyspark: ~630 MB) only for the spark target, its demo, bench and test
$(SPARK_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(SPARK_INSTALLED)

install-spark: $(SPARK_INSTALLED) ## add the spark extra (dbt-spark, pyspark; Java 17+ needed to run it)

demo: install ## embedded PostgreSQL + local DWD mirror -> dlt load -> dbt build -> a mart table
	bash scripts/demo.sh

demo-spark: install-spark ## the same mirror -> dlt -> a parquet lake -> dbt build --target spark, checked against PostgreSQL's marts
	bash scripts/demo_spark.sh

test: install install-spark browser lint pytest ## ruff, sqlfluff (dbt templater) and pytest (loaders, CLI, real dbt builds)

# the monitoring page's test renders it in a real headless Chromium: Debian's package, installed
# when missing (as root, or through sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser test"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null; }; }

lint: install
	$(BIN)/ruff check loaders tests bench scripts
	$(BIN)/ruff format --check loaders tests bench scripts
	eval "$$($(BIN)/weatherinsight db env)" && $(BIN)/sqlfluff lint models tests/dbt

# the suite in two workers (a module's shared warehouse stays on one: --dist loadgroup)
WORKERS ?= 2
pytest: install install-spark
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup
	# docs/reliability.md's table must be what the fault suite just recorded
	$(BIN)/python scripts/reliability_table.py --check

test-quick: install ## the inner loop (~1 min): ruff, parser, loader units, window parity, CLI errors, dbt unit tests
	$(BIN)/ruff check loaders tests bench scripts
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup -m quick

stress: install ## the loaders' concurrency and kill tests 10 times in a row beside a CPU hog per core (ROUNDS=10)
	bash scripts/stress.sh $(or $(ROUNDS),10)

bench: install ## benchmarks: loader vs COPY, windowed rebuilds, dbt overhead, SQLMesh and wetterdienst (~20 min)
	$(BIN)/python bench/run.py

bench-scale: install ## the everyday cycle at a product's real size: load, full build, 3 days of DWD's regeneration + update (FRACTION=0.1 for a tenth)
	$(BIN)/python bench/scale.py --fraction $(or $(FRACTION),1.0)

bench-spark: install-spark ## scale plan: both engines at two sizes side by side, the full archive projected (~10 min)
	$(BIN)/python bench/spark.py

bench-serve: install ## API latency at 20 concurrent clients, backup and restore times (after `make demo`)
	$(BIN)/python bench/serve.py

# slim CI: save the manifest of what the warehouse holds (run on main), then on a branch build and
# test only what changed and its children, reading everything else from the warehouse (--defer)
STATE ?= target/ci-state
ci-state: install ## save this checkout's dbt manifest as the state slim CI compares with
	eval "$$($(BIN)/weatherinsight db env)" && $(BIN)/dbt parse --quiet --target-path $(STATE)

ci-slim: install ## build and test only what changed since STATE (default target/ci-state) and its children
	@test -f $(STATE)/manifest.json || { echo "no $(STATE)/manifest.json: run 'make ci-state' on main first"; exit 2; }
	eval "$$($(BIN)/weatherinsight db env)" && $(BIN)/dbt ls --selector slim_ci --state $(STATE) --resource-type model
	eval "$$($(BIN)/weatherinsight db env)" && $(BIN)/dbt build --selector slim_ci --defer --state $(STATE)

docs: install ## build the dbt docs site (then: weatherinsight dbt docs serve)
	$(BIN)/weatherinsight dbt docs generate

db-up: install
	$(BIN)/weatherinsight db up

db-down: install
	$(BIN)/weatherinsight db down

clean: ## remove build output (keeps the database; `make db-down` and delete .pgdata/ for that)
	rm -rf target logs .pytest_cache
