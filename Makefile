# imagegen developer commands. `make run` and `make test` create the environment on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUF := node_modules/.bin/buf
PROTOS := $(shell find protos -name '*.proto' | sort)
PYTHON_PATHS := services gateway clients standins tools tests

.PHONY: setup run test lint fmt protos bench soak clean

setup: $(STAMP) $(BUF)

# The virtualenv, rebuilt when the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Buf (protobuf lint and breaking-change checks) comes from npm, pinned in package-lock.json.
$(BUF): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(BUF)

## run: start the stack (stand-ins unless OLLAMA_URL / COMFYUI_URL(S) are set), generate two variants into out/
run: $(STAMP)
	$(PY) -m tools.stack --out out

## test: the whole suite (soak and GPU tests excluded)
# Workers: two per core. Most of a test's time is waiting (timers, sockets, child
# processes), so one worker per core leaves the cores idle; on 2 cores, 3 workers took
# ~100 s, 4 ~75 s, 6 ~63 s, but at 6 timing-bound tests start to fail on a loaded machine
# while 4 still passed with two busy loops beside them.
# Work stealing: a worker that runs out takes tests queued for another, so a run of slow
# tests (e.g. the GPU-paced render tests) is not left to one worker at the end.
# Bytecode caching stays on even where PYTHONDONTWRITEBYTECODE is set: pytest then keeps the
# assertion-rewritten test modules, instead of each worker rewriting the suite on every run.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
test: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -m "not soak and not gpu" -q -n $(TEST_WORKERS) --dist worksteal

## lint: formatting, lint, types, protobuf lint and breaking-change check
lint: $(STAMP) $(BUF)
	$(VENV)/bin/ruff format --check $(PYTHON_PATHS)
	$(VENV)/bin/ruff check $(PYTHON_PATHS)
	$(VENV)/bin/mypy $(PYTHON_PATHS)
	$(BUF) lint
	@if git rev-parse --verify --quiet main:protos >/dev/null; then \
		echo "buf breaking --against .git#branch=main"; \
		$(BUF) breaking --against '.git#branch=main'; \
	else echo "buf breaking: main has no protos yet"; fi

fmt: $(STAMP)
	$(VENV)/bin/ruff format $(PYTHON_PATHS)
	$(VENV)/bin/ruff check --fix $(PYTHON_PATHS)

## protos: regenerate the committed Python code beside each .proto, and the descriptor set
## with the comments that reflection serves (grpcurl describe)
# third_party/googleapis only resolves imports (google.longrunning); its Python comes from
# the googleapis-common-protos package.
protos: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iprotos -Ithird_party/googleapis --python_out=protos --grpc_python_out=protos --pyi_out=protos \
		--include_source_info --descriptor_set_out=protos/imagegen/descriptor_set.binpb $(PROTOS)

## bench: benchmarks with ratios; results printed and written to tests/bench/results/, then one summary table
bench: $(STAMP)
	@status=0; for b in tests/bench/bench_*.py; do echo "== $$b"; $(PY) $$b || status=1; done; \
	$(PY) tests/bench/summary.py; exit $$status

## soak: long fault-injection soak
soak: $(STAMP)
	$(PY) -m pytest -m soak -q

clean:
	rm -rf $(VENV) node_modules out .pytest_cache .mypy_cache .ruff_cache
