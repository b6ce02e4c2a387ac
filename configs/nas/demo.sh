#!/usr/bin/env bash
# gml-nas demo (about a minute on a laptop CPU): train a small BigNAS supernet on digits, search it
# under a FLOPs budget, export the best subnet as a static model and report its standalone accuracy.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"  # tiny convnets: one thread per process is fastest
CFG=configs/nas/bignas_digits.toml
WD=work_dirs/nas_bignas_digits
echo "== nas 1/3: BigNAS supernet (sandwich rule max+2 random+min, every subnet on the labels)"
gml run "$CFG" --work-dir "$WD" runtime.progress=false
echo "== nas 2/3: evolution search under 1.5 MFLOPs (BN re-calibrated, scored on the held-out search split)"
gml nas search "$CFG" --work-dir "$WD" --flops 1.5M
echo "== nas 3/3: export the best subnet (static nn.Module + TorchScript) and evaluate it standalone on the test split"
gml nas export "$CFG" --work-dir "$WD" --subnet "$WD/search/best_subnets.toml"
echo "== nas: fine-tune or evaluate it anywhere with  model = { type = \"gml.SmallCNN\", init_from = \"$WD/export/subnet.pth\" }"
