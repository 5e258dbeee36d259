#!/usr/bin/env bash
# One GPU window = one item of the GPU queue (issue: "On the GPU, where users train"), one command,
# at most 9 minutes, everything it produces under OUT (at most 8 files of 16 MB come back).
#
#   bench/gpu_queue.sh ITEM OUT [--dry-run]
#
#   1  pretrain the biggan-emoji-64 source: 20 s to measure images/s, then train for the minutes
#      left (bf16, EMA, DiffAugment); goes on from bench/gpu-results/pretrain/ when an earlier
#      window brought weights back. Brings back generator-ema.safetensors (fp16), weights-N
#      (G and D, fp16, for the next window), card.json and the log. The KID/FID report and the
#      per-class grid are made here, on the CPU, afterwards (the FID Inception does not fit the
#      64 MiB that travels): gan-adapters-report, see docs/zoo.md.
#   2  the CUDA test suite (pytest -m cuda), the path table (bench/bench_pointwise.py: copy
#      OUT/pointwise_paths.json over gan_adapters/surgery/) and the adapter benchmark
#      (bench/bench_adapters.py), after the class-conditional BNs and, for the folds, inside them.
#   3  the research sweep on the seed-like source (bench/research_window.py): the first window
#      times a cell and sets the steps per cell; each trains the cells that fit (seed 0 of every
#      domain first) and brings back cells.tar.gz and steps.txt. Here: unpack both into
#      bench/gpu-results/research/, then python bench/research_window.py --score (CPU).
#   4  time to adapt (bench/time_to_adapt.py): gan-adapters finetune on BigGAN-128's shape for the
#      paper's schedule, eager and compiled, each stopped after half the window: start-up,
#      ms a step, images/s and the projected 10,000-step time.
#
# On the device: the repository is the working directory, PyTorch and accelerate are installed,
# nothing else is; `make gpu-wheels` puts the few wheels it needs into .whl (carry it; items 3
# and 4 also carry .whl-perceptual, the EfficientNet-Lite0 loss network), and
# `make gpu-data` renders data/emoji-64-train.safetensors.gz (carry data/ for item 1).
# --dry-run runs the same steps on the CPU at toy sizes in seconds (tested in CI).
set -euo pipefail
item=${1:?usage: bench/gpu_queue.sh ITEM OUT [--dry-run]}
out=${2:?usage: bench/gpu_queue.sh ITEM OUT [--dry-run]}
dry=${3:-}
mkdir -p "$out"
log="$out/log.txt"
exec > >(tee -a "$log") 2>&1
began=$(date +%s)
budget=$((9 * 60))

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
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
left() { echo $((budget - ($(date +%s) - began))); }

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
    [ -f "$data" ] || { echo "missing $data: run 'make gpu-data' and carry data/"; exit 2; }
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
    "$python" -m pytest -q -m cuda tests/gpu -p no:cacheprovider | tee "$out/pytest.txt" || true
    # The path table first (a minute): fold="fast" and pointwise_impl="auto" read it.
    paths=(--out "$out")
    [ "$dry" = "--dry-run" ] && paths+=(--device cpu --batch 1 --sites 16:4 --group-sizes 4 --reps 1 --warmup 1)
    timeout "$(left)" "$python" bench/bench_pointwise.py "${paths[@]}"
    # What inductor fuses (the ReLU into the adapter's last pass; its table goes to log.txt).
    # Not in the dry run: tests/test_compile.py runs the same function on the CPU.
    [ "$dry" = "--dry-run" ] || timeout "$(left)" "$python" bench/inspect_fusion.py || true
    # Research placement (after each class-conditional BN), then the folds (after its inner BN).
    bench=(--precisions bf16)
    [ "$dry" = "--dry-run" ] && bench=(--device cpu --resolution 32 --ch 4 --batch 2 --reps 1 --warmup 1 --precisions fp32 --modes eager)
    timeout "$(left)" "$python" bench/bench_adapters.py "${bench[@]}" --out "$out/bench.md" \
      --variants "base,ssa,apgc r2,apgc r4,apgc r8,apc"
    timeout "$(left)" "$python" bench/bench_adapters.py "${bench[@]}" --out "$out/bench-folds.md" \
      --targets BatchNorm2d --variants "base,ssa,ssa unfolded,apgc r4,apgc r4 folded"
    ;;
  3)
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
      echo "item 3 needs the source model: run item 1 first (bench/gpu-results/pretrain/)"; exit 2
    fi
    "$python" bench/research_window.py --template "$template" --previous "$previous" --out "$out" \
      --seconds "$(( $(left) - 20 ))" "${extra[@]}"
    ;;
  4)
    # Time to adapt: the CLI on BigGAN-128's shape, eager then compiled, half the window each.
    adapt=(--out "$out" --seconds-per-mode "$(( ($(left) - 30) / 2 ))")
    [ "$dry" = "--dry-run" ] && adapt=(--out "$out" --seconds-per-mode 7 --resolution 32 --ch 4 \
      --batch-size 4 --perceptual none --modes eager --work "$out/work")
    "$python" bench/time_to_adapt.py "${adapt[@]}"
    rm -rf "$out/work"
    ;;
  *)
    echo "queue item $item is not prepared yet (see the GPU queue issue)"; exit 2
    ;;
esac
echo "item $item done in $(( $(date +%s) - began )) s; results in $out"
