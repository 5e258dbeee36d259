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
	$(BIN)/ruff check gan_adapters tests examples bench
	$(BIN)/ruff format --check gan_adapters tests examples bench

format: $(STAMP)
	$(BIN)/ruff format gan_adapters tests examples bench
	$(BIN)/ruff check --fix gan_adapters tests examples bench

DEMO_RUN := demo-out/emoji-faces

# The embedded default: the pretrained face DCGAN adapted to 25 emoji faces, on the CPU.
demo: $(STAMP)
	$(BIN)/gan-adapters inspect dcgan-faces --kind apgc --ratio 8
	$(BIN)/gan-adapters finetune recipes/demo-emoji-faces.toml --out $(DEMO_RUN) --overwrite
	$(BIN)/gan-adapters sample $(DEMO_RUN) -n 32 --compare
	$(BIN)/gan-adapters interpolate $(DEMO_RUN) --frames 12
	@echo
	@echo "demo done: adapter file, sample grids and the interpolation are under $(DEMO_RUN)/"

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache *.egg-info
