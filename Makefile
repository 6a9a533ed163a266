# Two commands on a fresh machine: `make demo` and `make test` (both create .venv if missing).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test bench lint venv clean docs dist-check

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "wgan_lip needs Python >= 3.11; set PYTHON=python3.11 (or newer)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev,bench]'
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo_w1.py

# one pytest worker per core (at most 4), whole files per worker (module fixtures run once);
# TEST_WORKERS=0 runs everything in this process
TEST_WORKERS ?= auto
test: $(STAMP)
	WANDB_MODE=disabled $(PY) -m pytest -q -n $(TEST_WORKERS) --maxprocesses=4 --dist loadfile

bench: $(BENCH_STAMP)
	$(PY) scripts/bench_layers.py

docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "built docs/_build/html/index.html"

dist-check: $(STAMP)
	$(PY) scripts/check_dist.py

lint: $(STAMP)
	$(PY) -m ruff check wgan_lip tests scripts
	$(PY) -m ruff format --check wgan_lip tests scripts

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis docs/_build docs/benchmarks
