# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP_RUN  := $(VENV)/.installed-run
STAMP_DEV  := $(VENV)/.installed-dev
# Runtime dependencies, each pinned with its hashes (`make lock` regenerates it); the Dockerfile uses it too.
LOCK       := requirements/runtime.lock
BUILD_LOCK := requirements/build.lock

.PHONY: run test lint policy-test policy-test-opa bench bench-pipeline clean system-deps tools docs reliability-doc \
        wheel lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml requirements/engine.lock $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/engine.lock
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml requirements/engine.lock $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/engine.lock
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

## run: `tribunal dev`: the whole service on embedded defaults (HTTPS on 127.0.0.1:8443, an embedded
## Kafka-compatible broker, SQLite); `tribunal demo` in another terminal sends it the bundled examples
run: $(STAMP_DEV)
	$(BIN)/tribunal dev

## test: lint, type-check, layer check, Rego policy tests and the whole pytest suite (unit, integration,
## conformance, e2e against a real kube-apiserver, etcd and OPA); the last line counts skipped tests
test: $(STAMP_DEV) system-deps tools lint policy-test policy-test-opa
	$(BIN)/pytest -q

# Debian packages the tests drive for real, installed only where missing (needs root, as CI is; tests
# never install anything): chromium renders the HTML report, prometheus-alertmanager receives alerts,
# prometheus provides promtool (checks and unit-tests the chart's alert rules),
# postgresql's initdb/postgres are started by the test fixtures on a free port (no server runs here).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	  missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The real servers of the e2e tests, built from their Go modules, pinned, into a git-ignored .tools/bin
# (Go's module and build caches make a second run a no-op). kube-apiserver and etcd come from
# tools/go.mod (k8s.io/kubernetes cannot be `go install`ed: it has replace directives); OPA installs.
# Not needed by `make run`. docs/install.md says how long a first build takes.
TOOLS        := .tools/bin
OPA_VERSION  := v1.22.4
KUBE_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" && $$2 ~ /^v/ {print $$2; exit}' tools/go.mod)
KUBE_MINOR   := $(word 2,$(subst ., ,$(KUBE_VERSION)))
KUBE_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
                -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(KUBE_MINOR)

OPA_STAMP    := $(TOOLS)/.opa-$(OPA_VERSION)
# On a terminal, go lists each package as it builds it (progress through a first, minutes-long build).
GO_PROGRESS  := $(shell [ -t 2 ] && echo -v)

tools: $(OPA_STAMP) $(TOOLS)/etcd $(TOOLS)/kube-apiserver

$(OPA_STAMP):
	mkdir -p $(TOOLS)
	@echo "building OPA $(OPA_VERSION) (a first build takes about 3 min)"
	GOBIN=$(abspath $(TOOLS)) go install $(GO_PROGRESS) github.com/open-policy-agent/opa@$(OPA_VERSION)
	rm -f $(TOOLS)/.opa-* && touch $@

$(TOOLS)/etcd: tools/go.mod tools/go.sum
	@echo "building etcd (a first build takes about 2 min)"
	cd tools && go build $(GO_PROGRESS) -buildvcs=false -o ../$@ go.etcd.io/etcd/server/v3

$(TOOLS)/kube-apiserver: tools/go.mod tools/go.sum
	@echo "building kube-apiserver $(KUBE_VERSION) (a first build takes about 5 min)"
	cd tools && go build $(GO_PROGRESS) -buildvcs=false -ldflags "$(KUBE_LDFLAGS)" -o ../$@ k8s.io/kubernetes/cmd/kube-apiserver

## docs: regenerate the reference part of docs/cli.md from the parser and the settings (a test checks it)
docs: $(STAMP_DEV)
	$(BIN)/python -m tribunal.reference docs/cli.md

lint: $(STAMP_DEV)
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

policy-test: $(STAMP_RUN)
	$(BIN)/tribunal policy test policies

# The same library and its tests on the real OPA: policies must run unchanged on an OPA server.
policy-test-opa: $(OPA_STAMP)
	$(TOOLS)/opa check --v1-compatible policies
	$(TOOLS)/opa test policies

bench: $(STAMP_DEV)
	$(BIN)/python bench/bench_engine.py

## reliability-doc: run the fault tests (tests/faults/, also part of `make test`) and splice the table
## they print (.faults/table.md) into docs/reliability.md
reliability-doc: $(STAMP_DEV) system-deps tools
	$(BIN)/pytest -q tests/faults
	$(BIN)/python -m tests.faults.splice

## bench-pipeline: Kafka end to end beside its ceilings (starts a Tansu broker; about a minute)
bench-pipeline: $(STAMP_DEV)
	$(BIN)/python bench/bench_pipeline.py

## wheel: dist/tribunal-<version>-py3-none-any.whl, with the policy library and the rules inside (setup.py
## copies policies/ and rules/ into it): `pip install` it anywhere, with its dependencies from $(LOCK)
wheel: | $(BIN)/python
	rm -rf build dist/tribunal-*.whl
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir dist .

## lock: regenerate $(LOCK) (the dependencies of pyproject.toml) and $(BUILD_LOCK) (its build-system, for
## the image's build of the wheel) after changing them; uv, from the dev extra. --universal: one lock for
## every platform (the image's linux/amd64 and linux/arm64, macOS)
COMPILE := $(BIN)/uv pip compile --quiet --universal --generate-hashes --python-version 3.11 --no-header
lock: $(STAMP_DEV)
	{ echo "# Tribunal's runtime dependencies, each pinned with its hashes, compiled from pyproject.toml:"; \
	  echo "# make run and the Dockerfile install them with pip install --require-hashes -r $(LOCK)."; \
	  echo "# Never edit by hand; regenerate after changing the dependencies in pyproject.toml with"; \
	  echo "#   make lock"; \
	  echo "# (uv pip compile pyproject.toml --universal --generate-hashes --python-version 3.11, within the"; \
	  echo "# versions that the extras resolve to as well, so the dev install keeps these pins)."; \
	} > $(LOCK).tmp
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --no-header --all-extras \
	  pyproject.toml -o $(LOCK).extras
	$(COMPILE) pyproject.toml -c $(LOCK).extras -o $(LOCK).pins
	grep -v -e '-c $(LOCK).extras' $(LOCK).pins >> $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK) && rm -f $(LOCK).extras $(LOCK).pins
	{ echo "# What builds Tribunal's wheel (pyproject.toml's build-system.requires), pinned with hashes for"; \
	  echo "# the Dockerfile's pip install --no-build-isolation. Never edit by hand: make lock."; \
	  $(BIN)/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" \
	    | $(COMPILE) - -c $(LOCK) | grep -v -e '-c $(LOCK)'; } > $(BUILD_LOCK).tmp
	mv $(BUILD_LOCK).tmp $(BUILD_LOCK)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist
