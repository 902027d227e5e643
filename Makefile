# The two commands: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Test workers (pytest-xdist): one per core; `make test WORKERS=0` runs in one process.
WORKERS ?= auto

# The locked dependency sets (pins with hashes, made by `make lock`): the platform with its
# extras, and the workspace image (images/requirements.txt, installed by images/build.sh).
LOCK       := requirements.lock
IMAGE_LOCK := images/requirements.lock
# Both are resolved for the machines they run on: CPython 3.11 on x86-64 Debian 12 (glibc
# 2.36); the image's Python is bookworm's 3.11.2, and it takes wheels only.
LOCK_FOR   := --python-platform x86_64-manylinux_2_36 --generate-hashes \
              --custom-compile-command 'make lock'
# `make lock UPGRADE=--upgrade` moves every pin; UPGRADE='--upgrade-package NAME' one package.
UPGRADE ?=

.PHONY: install run test bench lint lock audit image

install: $(STAMP)

# Only what the lock names, each file checked against its hash, then the project itself.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

lock: install
	$(BIN)/uv pip compile -q pyproject.toml --extra test --extra hub --extra tools \
	  --python-version 3.11 $(LOCK_FOR) $(UPGRADE) -o $(LOCK)
	$(BIN)/uv pip compile -q images/requirements.txt --only-binary :all: \
	  --python-version 3.11.2 $(LOCK_FOR) $(UPGRADE) -o $(IMAGE_LOCK)

# Known vulnerabilities in either lock (asks the package index; .ci/audit-ignore.txt).
audit: install
	$(BIN)/python .ci/audit.py $(LOCK) $(IMAGE_LOCK)

# The workspace image from its lock; prints the image's ID.
image: install
	images/build.sh

run: install
	$(BIN)/sandbox run --tls

test: install
	$(BIN)/pytest -q -n $(WORKERS) --dist loadgroup --durations=30

bench: install .venv-bench/.installed
	$(BIN)/python -m benchmarks

.venv-bench/.installed: benchmarks/requirements.txt
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install -q -r benchmarks/requirements.txt
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
