# One command sets everything up and runs the demo (`make demo`) or the tests (`make test`).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q --disable-pip-version-check -e ".[test]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/skinbench run --out runs/demo

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup  # the inner loop: leaves out the tests marked slow (make test runs everything)
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) runs
