#!/usr/bin/env bash
# gml-prune demo: prune the digits model with DMCP, export a physically smaller model,
# fine-tune it, and show accuracy, FLOPs and CPU latency before/after (about 30 s of CPU).
# Run from the repository root with `gml` (and its python) on PATH:
#   bash configs/prune/demo.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"   # tiny models: one thread is fastest
LOGS=work_dirs/prune_demo_logs
mkdir -p "$LOGS"

step() {  # step NAME CONFIG: run quietly, keep the full log
  echo "== $1: gml run $2"
  if ! gml run "$2" >"$LOGS/$1.log" 2>&1; then
    tail -n 30 "$LOGS/$1.log"
    exit 1
  fi
}

step baseline configs/prune/baseline_digits.toml      # SmallCNN (width 16) on digits
step dmcp configs/prune/dmcp_digits.toml              # DMCP to 50% FLOPs, exports pruned.pth
step finetune configs/prune/finetune_digits.toml      # init_from pruned.pth rebuilds the small model

python - <<'PY'
import json
from pathlib import Path

base = json.loads(Path("work_dirs/prune_baseline_digits/summary.json").read_text())
rep = json.loads(Path("work_dirs/prune_dmcp_digits/prune_report.json").read_text())
tuned = json.loads(Path("work_dirs/prune_finetune_digits/summary.json").read_text())
b, a = rep["before"], rep["after"]
rows = [
    ("baseline (unpruned)", base["metrics"]["accuracy/top1"], b),
    ("DMCP pruned, exported", a["accuracy/top1"], a),
    ("DMCP pruned + fine-tuned", tuned["metrics"]["accuracy/top1"], a),
]
print()
print(f"{'model':26s} {'top-1 %':>8s} {'FLOPs':>9s} {'params':>8s} {'CPU ms b1':>10s} {'CPU ms b64':>11s}")
for name, acc, r in rows:
    lat = r["latency_ms"]
    print(f"{name:26s} {acc:8.2f} {r['flops'] / 1e6:8.3f}M {r['params'] / 1e3:7.1f}K {lat['1']:10.3f} {lat['64']:11.3f}")
print(f"\nFLOPs x{rep['ratio']['flops']:.2f}, params x{rep['ratio']['params']:.2f}, "
      f"latency x{rep['ratio']['latency_b1']:.2f} (batch 1) / x{rep['ratio']['latency_b64']:.2f} (batch 64)")
print("kept channels per group:", rep["channels"])
print("exported: work_dirs/prune_dmcp_digits/pruned.pth (+ pruned_torchscript.pt, prune_report.md)")
PY
