#!/usr/bin/env bash
# gml-kd demo (run from the repository root with `gml` on PATH; under a minute on a laptop CPU):
# train a width-16 SmallCNN teacher on digits, distil a width-4 student from its best
# checkpoint (FitNet hint stage, then labels + KD), and print both accuracies.
# KD_DEMO_TEACHER=path/best.pth skips the teacher run and distils from that checkpoint instead
# (any gml run of a width-16 SmallCNN on digits resized to 16, e.g. configs/baseline/digits_cnn.toml).
set -euo pipefail
WD="${KD_DEMO_WORK_DIR:-work_dirs/kd_demo}"
TEACHER="${KD_DEMO_TEACHER:-$WD/teacher/best.pth}"
mkdir -p "$WD"
run() {  # run NAME CONFIG ARGS...: quiet unless it fails
  local name="$1"; shift
  gml run "$@" --work-dir "$WD/$name" runtime.log_interval=1000 >"$WD/$name.log" 2>&1 || { cat "$WD/$name.log"; exit 1; }
}
[ -n "${KD_DEMO_TEACHER:-}" ] || run teacher configs/kd/teacher_digits.toml
run fitnet configs/kd/fitnet_digits.toml "algorithm.distiller.distill_cfg.teacher[0].ckpt_path=\"$TEACHER\""
val() { grep -o "\"$2\": \"\{0,1\}[0-9.]*" "$WD/$1/summary.json" | grep -o '[0-9.]*$' | head -1; }
printf 'teacher  SmallCNN width 16: top-1 %.2f %%  %s\n' "$(val fitnet 'teacher\[0\] top1')" "$TEACHER"
printf 'student  SmallCNN width 4,  %6s params: top-1 %.2f %%  %s  (FitNet hint stage, then labels + KD)\n' \
  "$(val fitnet params)" "$(val fitnet accuracy/top1)" "$WD/fitnet/student.pth"
