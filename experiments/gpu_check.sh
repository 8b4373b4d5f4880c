#!/usr/bin/env bash
# The GPU figures of the performance issue in one device call (about 6 minutes on an H100).
#
# Prepare here (no GPU needed):  make gpu-check-inputs     # .whl/ (wheels) and .data/ (Fashion IDX)
# Run on the lent machine:       device run, carry [".whl", ".data"], timeout_s 560:
#                                bash experiments/gpu_check.sh
# Try it here on CPU (tiny):     GPU_CHECK_DEVICE=cpu GPU_CHECK_QUICK=1 bash experiments/gpu_check.sh
#
# Writes into $OUT (default runs/gpu_check): env.txt, bench.md (the benchmark table against
# PyTorch eager, both networks, batch 10/128/1024, and 64 vmapped models), bench.log,
# fashion.log + fashion.json (time to 90% on Fashion-MNIST), sweep.log + sweep.json (configs/
# sweeps/lr_seed.py, 20 trials as one vmapped program vs one by one).
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

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c "import jax, flax, optax, orbax.checkpoint as o; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__)"
  "$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())" || true
} 2>&1 | tee "$OUT/env.txt"

echo "== 1. benchmark against PyTorch eager (+ 64 vmapped models on GPU)"
bench_args=(--device="$DEVICE" --repeats=3 --out="$OUT/bench.md")
[ "$QUICK" = 1 ] && bench_args=(--device="$DEVICE" --quick --batch_sizes=10 --out="$OUT/bench.md" --nocompile_cache)
timeout 300 "$PY" -m experiments.benchmark "${bench_args[@]}" 2>&1 | tee "$OUT/bench.log" | tail -40

echo "== 2. time to 90% on Fashion-MNIST (configs/fashion_mnist_fast.py)"
fashion=(--config=configs/fashion_mnist_fast.py --workdir="$WORK/fashion" --overwrite
         --config.idx_dir="$PWD/.data/fashion-mnist" --config.progress=false)
[ "$QUICK" = 1 ] && fashion+=(--config.num_epochs=1 --config.train_size=2000 --config.test_size=1000)
start=$(date +%s.%N)
timeout 120 "$PY" -m experiments.train "${fashion[@]}" > "$OUT/fashion.log" 2>&1
status=$?
end=$(date +%s.%N)
tail -3 "$OUT/fashion.log"
"$PY" - "$start" "$end" "$status" "$OUT/fashion.json" "$WORK" <<'EOF'
import json, sys
from pathlib import Path
start, end, status, out = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
results = Path(sys.argv[5]) / "fashion" / "results.json"
record = {"wall_s": round(end - start, 2), "exit": status,
          "results": json.loads(results.read_text()) if results.exists() else None}
Path(out).write_text(json.dumps(record, indent=1))
print(json.dumps({k: record[k] for k in ("wall_s", "exit")}),
      (record["results"] or {}).get("test_accuracy_at_best_val"))
EOF

echo "== 3. lr_seed sweep (20 same-shape trials): one vmapped program vs one by one"
sweep=(--config=configs/sweeps/lr_seed.py --report=false --config.base.progress=false)
[ "$QUICK" = 1 ] && sweep+=(--config.base.num_epochs=1 --config.base.train_size=200
                             --config.base.test_size=200)
for executor in vmap local; do
  rm -rf "$WORK/sweep_$executor"
  start=$(date +%s%N)
  timeout 150 "$PY" -m experiments.sweep "${sweep[@]}" --executor=$executor \
    --workdir="$WORK/sweep_$executor" > "$OUT/sweep_$executor.log" 2>&1
  status=$?
  echo "$executor exit $status wall $(( ($(date +%s%N) - start) / 1000000 )) ms" \
    | tee -a "$OUT/sweep.log"
  grep -h "statuses\|vmapped groups" "$OUT/sweep_$executor.log" | tee -a "$OUT/sweep.log"
  [ "$QUICK" = 1 ] && break
done
"$PY" - "$OUT/sweep.json" "$WORK" <<'EOF'
import csv, json, sys
from pathlib import Path
rows = {}
for executor in ("vmap", "local"):
    path = Path(sys.argv[2]) / f"sweep_{executor}" / "results.csv"
    if path.exists():
        rows[executor] = {r["trial"]: r.get("test_accuracy") for r in csv.DictReader(path.open())}
Path(sys.argv[1]).write_text(json.dumps(rows, indent=1))
print({k: len(v) for k, v in rows.items()})
EOF
echo "== done: $OUT"
