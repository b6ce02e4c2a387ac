#!/usr/bin/env bash
# The README showcase: train on the built-in digits data, then every installed technique's demo step.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== 1. baseline: a small CNN on scikit-learn's digits"
gml run configs/baseline/digits_cnn.toml
for step in kd nas prune qat hpo; do
  if [ -f "configs/$step/demo.sh" ]; then
    echo "== demo step: $step"
    bash "configs/$step/demo.sh"
  fi
done
echo "== done: outputs are under work_dirs/"
