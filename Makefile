# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP_RUN  := $(VENV)/.installed-run
STAMP_DEV  := $(VENV)/.installed-dev
STAMP_SYS  := $(VENV)/.system-deps

.PHONY: run test lint policy-test bench bench-pipeline clean alertmanager

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml requirements/engine.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/engine.lock
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml requirements/engine.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/engine.lock
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

## run: `tribunal dev`: the whole service on embedded defaults (HTTPS on 127.0.0.1:8443, an embedded
## Kafka-compatible broker, SQLite); `tribunal demo` in another terminal sends it the bundled examples
run: $(STAMP_DEV)
	$(BIN)/tribunal dev

# Debian packages the tests drive for real: chromium renders the HTML report. A no-op when present.
$(STAMP_SYS): | $(BIN)/python
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)
	touch $@

## test: lint, type-check, layer check, Rego policy tests and the whole pytest suite
test: $(STAMP_DEV) $(STAMP_SYS) alertmanager lint policy-test
	$(BIN)/pytest -q

# Debian's prometheus-alertmanager, the real Alertmanager the alert tests start on loopback: a no-op
# where it is on PATH, else installed (needs root, as CI is). Tests never install anything.
alertmanager:
	@command -v prometheus-alertmanager >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager; }

lint: $(STAMP_DEV)
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

policy-test: $(STAMP_RUN)
	$(BIN)/tribunal policy test policies

bench: $(STAMP_DEV)
	$(BIN)/python bench/bench_engine.py

## bench-pipeline: Kafka end to end beside its ceilings (starts a Tansu broker; about a minute)
bench-pipeline: $(STAMP_DEV)
	$(BIN)/python bench/bench_pipeline.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
