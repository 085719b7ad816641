# The README's two commands. Both work on a fresh machine with only python3.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# Main job: train on embedded data, evaluate, write runs/demo/.
demo: $(STAMP)
	$(PY) trainers/demo.py --logdir=runs/demo

# Test suite (CPU, generated data only), on every core with pytest-xdist: 473 tests in 10 min 39 s on the
# 2-core AVX-512 machine, quiet, 2026-12-07 (12 min 30 s before that day's cuts; docs/benchmarks.md#the-test-suite).
# On a 2-core AMD EPYC with AVX2 only (2026-12-04, nothing else running): 339 tests in 21 min 26 s.
test: $(STAMP)
	$(PY) -m pytest -q -n auto tests

# The fast tier while developing: closed-form and unit tests, no subprocesses or exports
# (tests/conftest.py SLOW_MODULES and @pytest.mark.slow): 307 tests in 2 min 56 s on the 2-core AVX-512
# machine, nothing else running, 2026-12-06 23:49 UTC (204 tests in 3 min 2 s earlier that day)
# (the full suite there: 356 passed + 1 fixed since in 14 min 44 s, diagnostics runs sharing the CPU at its start).
test-fast: $(STAMP)
	$(PY) -m pytest -q -n auto -m "not slow" tests

clean:
	rm -rf $(VENV) runs
