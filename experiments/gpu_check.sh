#!/usr/bin/env bash
# The GPU figures in one device call (planned for an H100/H200: about 9 minutes).
#
# Prepare here (no GPU needed):  make gpu-check-inputs     # .whl/ (wheels), .data/ (MNIST pickle)
# Run on the lent machine:       device run, carry [".whl", ".data"], timeout_s 590:
#                                bash experiments/gpu_check.sh
# Try it here on CPU (tiny):     GPU_CHECK_DEVICE=cpu GPU_CHECK_QUICK=1 bash experiments/gpu_check.sh
#
# Writes into $OUT (default runs/gpu_check): env.txt; bench.md + bench.log (throughput against
# PyTorch eager, both networks, batch 10/128/1024, and 64 vmapped models); tta.md + tta.log
# (time to 99% test accuracy on MNIST, data resident on the device, lax.scan-fused chunks,
# compile reported apart); nielsen.md + nielsen.log (the chapter 6 table on MNIST: rows 1-4 at
# the book's protocol with 3 seeds as one vmapped program per row, rows 5-8 at a stated budget).
set -uo pipefail
OUT=${OUT:-runs/gpu_check}
DEVICE=${GPU_CHECK_DEVICE:-gpu}
QUICK=${GPU_CHECK_QUICK:-0}
WORK=${GPU_CHECK_WORK:-/tmp/gpu_check}  # training workdirs
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PYTHON:-python3}
if [ -d .whl ] && [ "$DEVICE" = gpu ]; then  # cp312 wheels for the GPU image
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/cnn_jax_site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/cnn_jax_site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -f .data/tfds/downloads/manual/mnist.pkl.gz ]; then  # the book's pickle, carried
  export CNN_JAX_DATA_DIR="$PWD/.data/tfds"
fi

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c "import jax, flax, optax, orbax.checkpoint as o; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__)"
  "$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())" || true
} 2>&1 | tee "$OUT/env.txt"

echo "== 1. throughput against PyTorch eager (+ 64 vmapped models on GPU)"
bench=(--device="$DEVICE" --repeats=3 --out="$OUT/bench.md")
[ "$QUICK" = 1 ] && bench=(--device="$DEVICE" --quick --batch_sizes=10 --networks=nielsen_cp2_fc100_relu
                            --out="$OUT/bench.md" --nocompile_cache)
timeout 200 "$PY" -m experiments.benchmark "${bench[@]}" 2>&1 | tee "$OUT/bench.log" | tail -20

echo "== 2. time to 99% on MNIST (the book's split), from process start"
tta=(--device="$DEVICE" --participants=project-fast,pytorch-fast,project-nielsen,pytorch-nielsen
     --seeds=0,1,2 --eval_every=10000 --out="$OUT/tta.md")
[ "$QUICK" = 1 ] && tta=(--device="$DEVICE" --participants=project-fast --seeds=0 --target=0.3
                          --eval_every=256 --train_images=1024 --max_epochs=1 --out="$OUT/tta.md")
timeout 180 "$PY" -m experiments.time_to_accuracy "${tta[@]}" 2>&1 | tee "$OUT/tta.log" | tail -12

echo "== 3. Nielsen's chapter 6 table on MNIST"
rows=(--workdir="$WORK/nielsen" --rows=1,2,3,4 --seeds=3 --executor=auto)
later=(--workdir="$WORK/nielsen" --rows=5,6,7,8 --expanded_epochs=10 --executor=auto)
if [ "$QUICK" = 1 ]; then
  rows=(--workdir="$WORK/nielsen" --rows=1 --seeds=2 --epochs=1 --train_size=200 --executor=vmap)
  later=()
fi
timeout 150 "$PY" -m experiments.nielsen_ch6 "${rows[@]}" > "$OUT/nielsen.log" 2>&1
[ ${#later[@]} -gt 0 ] && timeout 150 "$PY" -m experiments.nielsen_ch6 "${later[@]}" >> "$OUT/nielsen.log" 2>&1
cp "$WORK/nielsen/results.md" "$OUT/nielsen.md" 2>/dev/null || echo "no table" > "$OUT/nielsen.md"
tail -14 "$OUT/nielsen.md"
echo "== done: $OUT"
