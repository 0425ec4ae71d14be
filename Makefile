PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test bench bench-full lint format clean

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --editable ".[ray]"
	touch $@

run: $(VENV)/.installed
	$(PY) -m streamlit run app.py --server.port $(PORT)

test: $(VENV)/.installed-dev
	FEATLIB_OFFLINE=1 $(PY) -m pytest -n 2 --dist loadgroup

bench: $(VENV)/.installed-dev
	FEATLIB_OFFLINE=1 $(PY) benchmarks/run_all.py --quick

bench-full: $(VENV)/.installed-dev
	FEATLIB_OFFLINE=1 $(PY) benchmarks/run_all.py

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
