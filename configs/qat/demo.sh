#!/usr/bin/env bash
# gml-qat demo: quantization-aware training of the digits models the earlier demo steps produced
# (the distilled student, taught by its float teacher during QAT; the pruned model), or of the baseline
# CNN when those are absent; then fp32 vs int8 top-1, TorchScript size and CPU latency side by side.
# Run from anywhere with `gml` on PATH; about 10 s of CPU per QAT run.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v gml >/dev/null || { echo "demo.sh: gml is not on PATH (e.g. source .venv/bin/activate)" >&2; exit 2; }
# tiny models: one thread is the fastest setting and gives steady latency figures
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

has_plugin() {  # installed and loading
  gml plugins --json | python3 -c 'import json, sys; sys.exit(not any(p["name"] == sys.argv[1] and p["status"] == "ok" for p in json.load(sys.stdin)))' "$1"
}
runs=()
if [ -f work_dirs/kd_kd/student.pth ] && [ -f work_dirs/kd_teacher/best.pth ] && has_plugin kd; then
  echo "-- QAT of the distilled student, with its float teacher (gml-kd)"
  gml run configs/qat/iao_kd_digits.toml
  runs+=(work_dirs/iao_kd_digits)
fi
if [ -f work_dirs/prune_dmcp_digits/pruned.pth ] && has_plugin prune; then
  echo "-- QAT of the pruned model (gml-prune export)"
  gml run configs/qat/iao_pruned_digits.toml
  runs+=(work_dirs/iao_pruned_digits)
fi
if [ ${#runs[@]} -eq 0 ]; then
  [ -f work_dirs/digits_cnn/best.pth ] || gml run configs/baseline/digits_cnn.toml
  echo "-- QAT of the baseline digits CNN"
  gml run configs/qat/iao_digits.toml
  runs+=(work_dirs/iao_digits)
fi
gml qat report "${runs[@]}"
echo "int8 models: <work dir>/model_int8.ts (TorchScript) and model_int8.pth (state dict, weights_only-loadable)"
