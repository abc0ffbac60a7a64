# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test proto check lint typecheck layers bench bench-quick bench-remote clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# compat: the editable install is a plain path in a .pth file; the default import-hook finder
	# costs every interpreter start (each worker, each test subprocess) ~45 ms here
	$(PY) -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	# an editable install compiles no bytecode (pip does for a regular one): without it, and with
	# PYTHONDONTWRITEBYTECODE set, every worker process would compile rpc_parallel from source
	$(PY) -m compileall -q rpc_parallel examples bench > /dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest

proto: $(STAMP)
	$(VENV)/bin/rpcpar gen --all

check: lint typecheck layers
	$(VENV)/bin/rpcpar gen --all --check

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# the import-linter contracts of pyproject.toml: each layer imports only downward (docs/architecture.md)
layers: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]' --config-settings editable_mode=compat
	$(PY) -m bench

bench-quick: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]' --config-settings editable_mode=compat
	$(PY) -m bench --quick

bench-remote: $(STAMP)  # remote workers: ssh hosts in network namespaces and a Slurm cluster (root)
	$(PY) -m bench --remote

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .pytest_cache .ruff_cache
