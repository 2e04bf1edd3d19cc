# tensionbot — `make demo` runs the product offline, `make test` runs the whole suite
# (SQLite, then PostgreSQL on a throwaway cluster). Both bootstrap .venv on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-sqlite test-postgres lint bench bench-smoke clean lock smoke

# Dependencies from the lock file (exact versions, hashes checked), then the package itself; the
# second install only adds what pyproject.toml gained since the last `make lock`.
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Pin every dependency with hashes (uv; Python 3.11, any platform; UPGRADE=1 to take newer
# releases, else only what pyproject.toml changed is re-resolved): requirements.lock
# for the image, requirements-dev.lock (with the test and lint tools) for .venv.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 -q
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet 'uv>=0.5'
	$(UV_COMPILE) $(if $(UPGRADE),--upgrade) -o requirements.lock
	$(UV_COMPILE) $(if $(UPGRADE),--upgrade) --extra dev -o requirements-dev.lock

# Build and exercise the Docker image (or, with no Docker engine, the same steps in a fresh venv
# from requirements.lock): check-config and the healthcheck in polling and webhook mode.
smoke:
	bash scripts/docker-smoke

demo: $(STAMP)
	$(BIN)/python -m sim.demo --out demo-output

test: $(STAMP)
	bash scripts/test-all

test-sqlite: $(STAMP)
	$(BIN)/python -m pytest -q

test-postgres: $(STAMP)
	bash scripts/with-postgres $(BIN)/python -m pytest -q

# Every benchmark (about 17 minutes on 2 cores) -> bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	bash scripts/with-postgres $(BIN)/python -m bench

# A quick check for CI (about 2 minutes, SQLite only; the first run also makes the venv of
# requirements.lock that the footprint is measured in, about 2 more: bench/footprint.py): fails
# if the durable conversation is more than 2.5x slower than the in-memory baseline or the idle
# service holds more than 125 MiB (the targets of issue 17 + 25%).
bench-smoke: $(STAMP)
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	$(BIN)/python -m bench smoke

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
