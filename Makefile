# make demo : set up .venv, install dnnrsa, run the quick reproduction of the study
# make test : set up .venv, install dnnrsa with its test extras, run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dnnrsa-installed
OUT ?= out/demo

.PHONY: install demo test test-fast bench lint docs clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dnnrsa reproduce --quick --out $(OUT)
	@echo "Report: $(OUT)/report.md   Figures: $(OUT)/fig2a.png $(OUT)/fig2b.png $(OUT)/fig_calibration.png"

test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/bench_render.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_readout.py
	$(PY) benchmarks/bench_extract.py
	$(PY) benchmarks/bench_rsa.py
	$(PY) benchmarks/bench_brain.py

# the documentation site with the gallery executed (every example, a few minutes);
# warnings are errors. DNNRSA_DOCS_NO_GALLERY=1 skips running the examples.
docs: $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	DNNRSA_HOME=$${DNNRSA_HOME:-$(CURDIR)/docs/_build/models} $(PY) -m sphinx -W --keep-going -b html docs docs/_build/html
	@echo "Open docs/_build/html/index.html"

lint: $(STAMP)
	$(PY) -m pip install --quiet ruff
	$(VENV)/bin/ruff check dnnrsa tests benchmarks examples

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache docs/_build docs/generated docs/auto_examples
