# The two commands: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Test workers (pytest-xdist): one per core; `make test WORKERS=0` runs in one process.
WORKERS ?= auto

.PHONY: install run test bench lint

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[test,hub]'
	touch $(STAMP)

run: install
	$(BIN)/sandbox run

test: install
	$(BIN)/pytest -q -n $(WORKERS) --dist loadgroup

bench: install .venv-bench/.installed
	$(BIN)/python -m benchmarks

.venv-bench/.installed: benchmarks/requirements.txt
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install -q -r benchmarks/requirements.txt
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
