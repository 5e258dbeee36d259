# Everything the project needs is installed by these targets, into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TORCH := torch==2.13.0

.PHONY: install test lint format demo clean

$(STAMP): pyproject.toml requirements/no-deps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps -r requirements/no-deps.txt
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check gan_adapters tests
	$(BIN)/ruff format --check gan_adapters tests

format: $(STAMP)
	$(BIN)/ruff format gan_adapters tests
	$(BIN)/ruff check --fix gan_adapters tests

demo: $(STAMP)
	$(BIN)/gan-adapters inspect dcgan-faces --kind apgc --ratio 8 --save demo-out/dcgan-faces-apgc-r8.safetensors

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache *.egg-info
