# Every target creates .venv when it is missing and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out

.PHONY: demo test lint bench bench-quick clean help

help:
	@echo "make demo   - the live tour (writes figures to $(OUT)/)"
	@echo "make test   - ruff, the test suite, the doctests, the notebooks, the 8-device tests"
	@echo "make bench  - benchmarks against jax.nn and the obvious alternatives"
	@echo "make lint   - ruff only"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,notebooks]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m examples.demo --out $(OUT)

lint: $(STAMP)
	$(VENV)/bin/ruff check softjax tests benchmarks examples notebooks
	$(VENV)/bin/ruff format --check softjax tests benchmarks examples

test: lint
	$(PY) -m pytest -q --ignore=tests/multidevice
	XLA_FLAGS=--xla_force_host_platform_device_count=8 $(PY) -m pytest -q tests/multidevice

bench: $(STAMP)
	$(PY) -m benchmarks.run

bench-quick: $(STAMP)
	$(PY) -m benchmarks.run --quick

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache .hypothesis
