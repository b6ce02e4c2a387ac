#!/usr/bin/env bash
# gml-hpo demo: a tiny random search (4 real `gml run` digits trials, 2 at a time), then the results.
# Usage: configs/hpo/demo.sh   (about a minute on 2 CPU cores; needs gml-core and gml-hpo installed)
# Each run gets its own work dir (work_dirs/hpo_demo/<time>_<pid>), so runs never collide.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${GML_BIN:-$(dirname "$(command -v search-run || echo .venv/bin/search-run)")}"
export GML_HPO_WORK_DIR="${GML_HPO_WORK_DIR:-work_dirs/hpo_demo/$(date +%Y%m%d_%H%M%S)_$$}"
"$BIN/search-run" configs/hpo/digits_lr.yaml --quiet
"$BIN/search-ctl" show -t digits_lr
"$BIN/search-ctl" report -t digits_lr
