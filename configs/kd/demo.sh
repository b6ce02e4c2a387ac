#!/usr/bin/env bash
# gml-kd demo (run from the repository root with `gml` on PATH; under a minute on a laptop CPU):
# train a width-16 SmallCNN teacher on digits, distil a width-4 student from its best
# checkpoint (FitNet hint stage, then labels + KD), and print both accuracies.
set -euo pipefail
WD="${KD_DEMO_WORK_DIR:-work_dirs/kd_demo}"
mkdir -p "$WD"
run() {  # run NAME CONFIG ARGS...: quiet unless it fails
  local name="$1"; shift
  gml run "$@" --work-dir "$WD/$name" runtime.log_interval=1000 >"$WD/$name.log" 2>&1 || { cat "$WD/$name.log"; exit 1; }
}
run teacher configs/kd/teacher_digits.toml
run fitnet configs/kd/fitnet_digits.toml "algorithm.distiller.distill_cfg.teacher[0].ckpt_path=\"$WD/teacher/best.pth\""
val() { grep -o "\"$2\": \"\{0,1\}[0-9.]*" "$WD/$1/summary.json" | grep -o '[0-9.]*$' | head -1; }
printf 'teacher  SmallCNN width 16, %6s params: top-1 %.2f %%  %s\n' "$(val teacher params)" \
  "$(val fitnet 'teacher\[0\] top1')" "$WD/teacher/best.pth"
printf 'student  SmallCNN width 4,  %6s params: top-1 %.2f %%  %s  (FitNet hint stage, then labels + KD)\n' \
  "$(val fitnet params)" "$(val fitnet accuracy/top1)" "$WD/fitnet/student.pth"
