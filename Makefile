# mmrefactor: `make demo` and `make test` are the contract (see README.md).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DBDIR  := /usr/share/metamath/databases

.PHONY: setup system-deps test test-fast demo bench fol prover-study prover-study-fol clean

setup: system-deps $(VENV)/.installed

# Debian's metamath.exe is the independent judge; its databases are the real data.
# Chromium (headless) is how the tests check that `run`'s report.html renders.
system-deps:
	@if ! command -v metamath >/dev/null 2>&1 || [ ! -f $(DBDIR)/set.mm ]; then \
		echo "installing Debian packages metamath metamath-databases"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq metamath metamath-databases; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian package chromium"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; \
	fi

$(VENV)/.installed: pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,stitch,attribution,ray]'
	$(PY) -m pip install -q --no-deps kronfluence==1.0.1
	@touch $@

# the layers first (pyproject.toml [tool.importlinter]: metamath <- provers <- refactor), then the tests
test: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

test-fast: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -m 'not slow'

demo: setup
	$(PY) -m refactor demo

bench: setup
	$(PY) benchmarks/bench_verify.py
	$(PY) benchmarks/bench_grammar.py
	$(PY) benchmarks/bench_write.py

# the prover's main benchmark: set.mm's first-order-logic prefix (everything before ZF), 2,371 $p
FOL := build/set-fol.mm
$(FOL): | setup
	@mkdir -p build
	$(PY) -m refactor slice $(DBDIR)/set.mm --before-section "ZF (ZERMELO-FRAENKEL) SET THEORY" -o $@

fol: $(FOL)

# original vs refactored corpora, learned prover vs baselines (resumable; see README "The prover")
prover-study: setup
	$(PY) benchmarks/prover_study.py data/set-prop.mm --out runs/prover-prop

# The README's first-order figure, at the reduced scale this 2-core CPU allows (3 epochs, a seeded
# sample of 100 test theorems; the frequent, stitch and gnn corpora, 3 seeds); `make prover-study-fol
# FOL_STUDY=` runs the whole study (every extractor, all 237 test theorems, 8 epochs).
FOL_STUDY ?= --methods frequent stitch gnn --seeds 0 1 2 --sample 100 --epochs 3 --budget-seconds 300 --retry-timeouts 300 --jobs 1
prover-study-fol: $(FOL)
	$(PY) benchmarks/prover_study.py $(FOL) --out runs/prover-fol $(FOL_STUDY)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
