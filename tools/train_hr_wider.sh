#!/usr/bin/env bash
# Reproduce the shipped real-photo checkpoint tinylib/weights/hr_mnet025_wider.pt: the HR
# detector on the ImageNet MobileNetV1 x0.25, trained on the 1,239 real WIDER FACE train
# photos of the data bundle (configs/hr_mnet025_wider_cpu.yaml: 14 epochs, 2,170 steps of 8
# crops), exported in fp16 with its per-epoch history (hr_mnet025_wider_history.csv).
# About 35-40 min on 2 idle CPU cores, a few minutes on a GPU. Resumable in chunks: run it
# again after an interruption and it continues from $OUT/last.pt (saved every epoch); once
# all epochs are done it only exports.
#   TINYLIB_DATA=../shared/data tools/train_hr_wider.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
CONFIG=${CONFIG:-configs/hr_mnet025_wider_cpu.yaml}
OUT=${OUT:-runs/hr_mnet025_wider}
EXPORT=${EXPORT:-tinylib/weights/hr_mnet025_wider.pt}
resume=()
[ -f "$OUT/last.pt" ] && resume=(--resume)
"$PY" -m tinylib.hr.train "$CONFIG" --out "$OUT" "${resume[@]}" --no-progress \
    ${THREADS:+--threads "$THREADS"} --export "$EXPORT"
