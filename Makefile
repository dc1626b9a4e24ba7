# Every target creates its virtual environment when it is missing and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= out
# The newest CPython on this machine (pyenv's or on PATH), for the second test run.
NEWEST_VENV := .venv-newest

.PHONY: demo test test-newest lint docs bench bench-quick clean help

help:
	@echo "make demo        - the live tour (writes figures to $(OUT)/)"
	@echo "make test        - ruff, the docs build, the tests, doctests, notebooks, 8-device tests"
	@echo "make test-newest - the unit tests again under the newest Python found (its newest JAX),"
	@echo "                   but for those marked slow (the notebooks, examples, packaging too)"
	@echo "make bench       - benchmarks against jax.nn and the obvious alternatives"
	@echo "make lint        - ruff only"
	@echo "make docs        - the documentation site, built into site/"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# One stamp per extra: each target installs only what it needs.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-demo
	$(PY) -m examples.demo --out $(OUT)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check softjax tests benchmarks examples notebooks docs/_ext
	$(VENV)/bin/ruff format --check softjax tests benchmarks examples docs/_ext

# --strict fails on any warning of the build; NO_MKDOCS_2_WARNING hides the theme's notice about
# MkDocs' future, which is not one.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir site

# The site is built as by `make docs` but without executing the notebooks: the tests run them.
test: lint $(VENV)/.installed-docs
	SOFTJAX_DOCS_EXECUTE=false NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir site
	$(PY) -m pytest -q -n auto --ignore=tests/multidevice
	XLA_FLAGS=--xla_force_host_platform_device_count=8 $(PY) -m pytest -q -n auto tests/multidevice

$(NEWEST_VENV)/.installed: pyproject.toml
	$$(.ci/newest-python) -m venv $(NEWEST_VENV)
	$(NEWEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(NEWEST_VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $@

test-newest: $(NEWEST_VENV)/.installed
	$(NEWEST_VENV)/bin/python -c "import sys, jax; print('Python', sys.version.split()[0], 'JAX', jax.__version__)"
	$(NEWEST_VENV)/bin/python -m pytest -q -n auto -m "not slow" --ignore=tests/multidevice \
		--ignore=tests/test_notebooks.py --ignore=tests/test_examples.py --ignore=tests/test_packaging.py

bench: $(VENV)/.installed-test $(VENV)/.installed-bench
	$(PY) -m benchmarks.run

bench-quick: $(VENV)/.installed-test $(VENV)/.installed-bench
	$(PY) -m benchmarks.run --quick

clean:
	rm -rf $(VENV) $(NEWEST_VENV) $(OUT) site .pytest_cache .ruff_cache .hypothesis
