# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when it is
# missing and install the package with its pinned dependencies first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vaebench-installed
CORES ?= 2

.PHONY: demo test test-slow lint report bench bench-smoke

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) --resources gpu=1 --configfile workflow/configs/demo.yaml

report: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) --configfile workflow/configs/demo.yaml --report results/demo/report.html

# the suite but its slow tests (every family through the DAG, the SLURM cluster); CI runs both
test: $(STAMP)
	$(VENV)/bin/pytest -q -m "not slow"

test-slow: $(STAMP)
	$(VENV)/bin/pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/run_all.py --out-dir results/bench

# every benchmark at its smallest size: does each still run and write its JSON? (CI runs it)
bench-smoke: $(STAMP)
	$(PY) benchmarks/run_all.py --smoke --out-dir results/bench-smoke

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests workflow/scripts benchmarks
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules
	$(VENV)/bin/snakemake --lint
