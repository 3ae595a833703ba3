# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when it is
# missing and install the package with its pinned dependencies first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vaebench-installed
CORES ?= 2

.PHONY: demo test lint report bench clean-demo

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) --resources gpu=1 --configfile workflow/configs/demo.yaml

report: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) --configfile workflow/configs/demo.yaml --report results/demo/report.html

test: $(STAMP)
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) benchmarks/run_all.py --out-dir results/bench

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests workflow/scripts
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules
	$(VENV)/bin/snakemake --lint
