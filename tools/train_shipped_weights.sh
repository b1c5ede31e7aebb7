#!/usr/bin/env bash
# Reproduce the shipped quick-mode checkpoint tinylib/weights/hr_res18_synth.pt:
# the HR detector (ResNet-18 truncated after res4, 25 paper templates) trained from scratch
# on the quick synthetic world (160 train images of 512x384), exported in fp16.
# Needs TINYLIB_DATA (for RefBox_N25_scaled.mat); ~20 min on one CPU core, <1 min on a GPU.
# Runs are append-only: re-running resumes the run in $OUT from its last.pt (a finished run only
# re-exports); OVERWRITE=1 starts over (the old run is moved to $OUT/replaced-<time>/).
#   TINYLIB_DATA=../shared/data tools/train_shipped_weights.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export TINYLIB_QUICK=1
OUT=${OUT:-build/runs/hr_res18_synth_shipped}
how=()
if [[ ${OVERWRITE:-0} == 1 ]]; then how=(--overwrite); elif [[ -f $OUT/last.pt ]]; then how=(--resume); fi
"$PY" -m tinylib.hr.train configs/hr_res18_synth_quick.yaml "${how[@]}" \
    --out "$OUT" --threads "${THREADS:-1}" --no-progress \
    --set train.epochs=30 --set 'train.lr_milestones=[22,28]' \
    --set eval.every=5 --set eval.max_images=40 \
    --export tinylib/weights/hr_res18_synth.pt
