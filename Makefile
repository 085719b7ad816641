# The README's two commands. Both work on a fresh machine with only python3.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# Main job: train on embedded data, evaluate, write runs/demo/.
demo: $(STAMP)
	$(PY) trainers/demo.py --logdir=runs/demo

# Test suite (CPU, generated data only; ~10 min on 2 cores).
test: $(STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) runs
