# The README's two commands. Both work on a fresh machine with only python3.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# Main job: train on embedded data, evaluate, write runs/demo/.
demo: $(STAMP)
	$(PY) trainers/demo.py --logdir=runs/demo

# Test suite (CPU, generated data only; 16-17 min on a 2-core AVX2 CPU, 2026-11-30).
test: $(STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) runs
