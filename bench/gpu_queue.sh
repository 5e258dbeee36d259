#!/usr/bin/env bash
# One GPU window = one item of the GPU queue, one command, at most 9 minutes; everything it makes
# goes under OUT (at most 8 files of 16 MiB come back). Each step is limited to the time left, and
# what a step measures is written as it is measured, so an item cut short still brings back rows.
#
#   bench/gpu_queue.sh ITEM OUT [--dry-run]
#   bench/gpu_queue.sh carry ITEM        # the paths to name in the device tool's `carry`
#
#   1  pretrain the biggan-emoji-64 source: 20 s to measure images/s, then train for the minutes
#      left (bf16, EMA, DiffAugment); goes on from bench/gpu-results/pretrain/ when an earlier
#      window brought weights back. Brings back generator-ema.safetensors (fp16), weights-N
#      (G and D, fp16, for the next window), card.json and the log. The KID/FID report and the
#      per-class grid are made here, on the CPU, afterwards (gan-adapters-report, docs/zoo.md).
#   2  the CUDA tests (pytest -m cuda, tests/gpu/): stopped at the window's limit; pytest.xml and
#      the exit status come back, and the item fails when a test does.
#   3  the path table (bench/bench_pointwise.py: copy OUT/pointwise_paths.json over
#      gan_adapters/surgery/) and what inductor fuses (bench/inspect_fusion.py, in log.txt).
#   4  the adapter benchmark, adapters after each class-conditional BN (the research's placement):
#      bf16, eager then compiled (bench/bench_adapters.py; bench.md, a row as it is measured).
#   5  the same for the folds, adapters after the BN inside each (bench-folds.md).
#   6  the research sweep on the seed-like source (bench/research_window.py): the first window
#      times a cell and sets the steps per cell; each trains the cells that fit (seed 0 of every
#      domain first) and brings back the new cells (cells-N.tar.gz, fp16, < 15 MiB each) and
#      steps.txt. Here: unpack them into bench/gpu-results/research/, then
#      python bench/research_window.py --score (CPU).
#   7  time to adapt (bench/time_to_adapt.py): gan-adapters finetune on BigGAN-128's shape for the
#      paper's schedule, eager and compiled, each stopped after half the window: start-up,
#      ms a step, images/s and the projected 10,000-step time.
#
# On the device: the repository is the working directory and its python3 has PyTorch, accelerate,
# typer, rich and pytest; `make gpu-wheels` puts what it lacks into .whl (tomli-w) and
# .whl-perceptual (the EfficientNet-Lite0 loss network and critic features), and `make gpu-data`
# renders data/emoji-64-train.safetensors.gz (item 1). `carry ITEM` says which of them an item needs.
# --dry-run runs the same steps on the CPU at toy sizes in seconds (tested in CI), and checks that
# what would travel (the tree and the carry) and what comes back fit the device's limits.
set -euo pipefail

carry_of() {
  case "$1" in
    1) echo .whl data/emoji-64-train.safetensors.gz ;;
    2|6|7) echo .whl .whl-perceptual ;;
    3|4|5) echo .whl ;;
    *) echo "queue item $1 is not prepared yet (see the GPU queue issue)"; return 2 ;;
  esac
}

if [ "${1:-}" = "carry" ]; then
  carry_of "${2:?usage: bench/gpu_queue.sh carry ITEM}"
  exit
fi
item=${1:?usage: bench/gpu_queue.sh ITEM OUT [--dry-run]}
out=${2:?usage: bench/gpu_queue.sh ITEM OUT [--dry-run]}
dry=${3:-}
carry=$(carry_of "$item") || { echo "$carry"; exit 2; }
mkdir -p "$out"
began=$(date +%s)
budget=$((9 * 60))
left() { echo $((budget - ($(date +%s) - began))); }

if [ "$dry" = "--dry-run" ]; then
  python=${PYTHON:-.venv/bin/python}
else
  python=python3
  wheels=$(ls .whl/*.whl .whl-perceptual/*.whl 2>/dev/null || true)
  if [ -n "$wheels" ]; then
    # shellcheck disable=SC2086
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $wheels
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

run_item() {
  set -e
  # shellcheck disable=SC2086
  [ "$dry" = "--dry-run" ] && "$python" bench/window_check.py carry $carry
  "$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
case "$item" in
  1)
    data=data/emoji-64-train.safetensors.gz
    size=(--architecture biggan --resolution 64 --ch 32 --batch-size 128 --precision bf16 --g-lr 1e-4 --d-lr 4e-4 --beta1 0)
    if [ "$dry" = "--dry-run" ]; then
      data="$out/toy.safetensors"
      "$python" - "$data" <<'PY'
import json, sys, torch
from safetensors.torch import save_file
images = (torch.rand(12, 3, 32, 32) * 255).to(torch.uint8)
save_file({"images": images, "labels": torch.arange(12) % 3}, sys.argv[1], metadata={"classes": json.dumps(list("abc"))})
PY
      gzip -f "$data" && data="$data.gz"  # the same gzipped form as the real tensor
      size=(--architecture biggan --resolution 32 --ch 4 --batch-size 4 --precision no)
    fi
    [ -f "$data" ] || { echo "missing $data: run 'make gpu-data' and carry it"; exit 2; }
    resume=()
    [ -f bench/gpu-results/pretrain/weights-0.safetensors ] && resume=(--init-from bench/gpu-results/pretrain)
    # 20 s (or 3 toy steps) to measure images per second, then the main run for the time left.
    probe=(--minutes 0.33); [ "$dry" = "--dry-run" ] && probe=(--steps 3)
    "$python" -m gan_adapters pretrain "$data" -o "$out/probe" "${size[@]}" "${probe[@]}" "${resume[@]}"
    minutes=$(( ($(left) - 60) / 60 ))
    main=(--minutes "$minutes"); [ "$dry" = "--dry-run" ] && main=(--steps 6)
    "$python" -m gan_adapters pretrain "$data" -o "$out/run" "${size[@]}" "${main[@]}" "${resume[@]}"
    cp "$out"/run/generator-ema.safetensors "$out"/run/weights-*.safetensors "$out/"
    "$python" -c "import json; from safetensors import safe_open; h = safe_open('$out/generator-ema.safetensors', 'pt'); print(json.dumps(json.loads(h.metadata()['card']), indent=1))" > "$out/card.json"
    rm -rf "$out/probe" "$out/run" "$out/toy.safetensors.gz"  # checkpoints are too big to come back
    ;;
  2)
    # The CUDA tests, stopped at the window's limit; the item's status is pytest's.
    set +e
    timeout "$(( $(left) - 20 ))" "$python" -m pytest -q -m cuda tests/gpu -p no:cacheprovider -rfEs \
      --durations=15 --junitxml "$out/pytest.xml"
    tests=$?
    set -e
    echo "pytest exit status $tests (124: stopped at the window's limit)"
    [ "$tests" -eq 0 ] || exit "$tests"
    ;;
  3)
    # The path table (a minute): fold="fast" and pointwise_impl="auto" read it.
    paths=(--out "$out")
    [ "$dry" = "--dry-run" ] && paths+=(--device cpu --batch 1 --sites 16:4 --group-sizes 4 --reps 1 --warmup 1)
    timeout "$(( $(left) - 10 ))" "$python" bench/bench_pointwise.py "${paths[@]}"
    # What inductor fuses (the ReLU into the adapter's last pass; its table goes to log.txt).
    # Not in the dry run: tests/test_compile.py runs the same function on the CPU.
    [ "$dry" = "--dry-run" ] || timeout "$(( $(left) - 10 ))" "$python" bench/inspect_fusion.py
    ;;
  4|5)
    # Item 4: adapters after each class-conditional BN (the research's placement); item 5: after
    # its inner BN, where the folds apply. Each row is written as it is measured.
    bench=(--precisions bf16 --modes eager,compiled)
    [ "$dry" = "--dry-run" ] && bench=(--device cpu --resolution 32 --ch 4 --batch 2 --reps 1 --warmup 1 \
      --precisions fp32 --modes eager)
    if [ "$item" = 4 ]; then
      bench+=(--out "$out/bench.md" --variants "base,ssa,apgc r2,apgc r4,apgc r8,apc")
    else
      bench+=(--out "$out/bench-folds.md" --targets BatchNorm2d --variants "base,ssa,ssa unfolded,apgc r4,apgc r4 folded")
    fi
    timeout "$(( $(left) - 10 ))" "$python" bench/bench_adapters.py "${bench[@]}" --seconds "$(( $(left) - 30 ))"
    ;;
  6)
    # The research sweep on the seed-like source, trained here, scored on the CPU afterwards.
    template=recipes/research-emoji-biggan.toml
    previous=bench/gpu-results/research
    extra=()
    if [ "$dry" = "--dry-run" ]; then
      # A toy source and a toy grid (one domain, ssa and apc, 10 images, 2 seeds), the same steps.
      previous="${PREVIOUS:-$out/previous}"
      template="$out/dry-recipe.toml"
      "$python" - "$template" "$out/toy-generator.safetensors" "$PWD" <<'PY'
import sys, tomllib, tomli_w, torch
from pathlib import Path
from gan_adapters.generators.biggan import BigGANConfig, BigGANGenerator
from gan_adapters.generators.sources import save_generator_file
recipe, weights, root = sys.argv[1:]
config = BigGANConfig(resolution=32, ch=4, num_classes=3)
torch.manual_seed(0)
save_generator_file(BigGANGenerator(config), Path(weights))
data = tomllib.load(open(f"{root}/recipes/research-emoji-biggan.toml", "rb"))
data["base"] |= {"model_options": {"weights": weights}, "batch_size": 4, "perceptual": "none"}
data["domains"] = [d | {"data": d["data"].replace("..", root)} for d in data["domains"][-1:]]
data["methods"] = [m for m in data["methods"] if m["kind"] in ("ssa", "apc")]
data["grid"] |= {"images": [10], "seeds": [0, 1]}
data["eval"] = {"samples": 6, "kid_subsets": 5}
open(recipe, "wb").write(tomli_w.dumps(data).encode())
PY
      extra=(--probe-steps 2 --step-choices 4,2)
    elif [ ! -f bench/gpu-results/pretrain/generator-ema.safetensors ]; then
      echo "item 6 needs the source model: run item 1 first (bench/gpu-results/pretrain/)"; exit 2
    fi
    "$python" bench/research_window.py --template "$template" --previous "$previous" --out "$out" \
      --seconds "$(( $(left) - 20 ))" "${extra[@]}"
    ;;
  7)
    # Time to adapt: the CLI on BigGAN-128's shape, eager then compiled, half the window each.
    adapt=(--out "$out" --seconds-per-mode "$(( ($(left) - 30) / 2 ))")
    [ "$dry" = "--dry-run" ] && adapt=(--out "$out" --seconds-per-mode 7 --resolution 32 --ch 4 \
      --batch-size 4 --perceptual none --modes eager --work "$out/work")
    "$python" bench/time_to_adapt.py "${adapt[@]}"
    rm -rf "$out/work"
    ;;
esac
  echo "item $item done in $(( $(date +%s) - began )) s; results in $out"
}

# A pipeline, not a process substitution: bash waits for tee, so the log is whole when this returns.
set +e
run_item 2>&1 | tee -a "$out/log.txt"
status=${PIPESTATUS[0]}
"$python" bench/window_check.py out "$out" || status=1
exit "$status"
