#!/usr/bin/env bash
# Reproduce the shipped real-photo checkpoint tinylib/weights/hr_mnet025_wider.pt: the HR
# detector on the ImageNet MobileNetV1 x0.25, trained on the 1,239 real WIDER FACE train
# photos of the data bundle, in three steps:
#   1. stage 1, the paper's recipe (configs/hr_mnet025_wider_cpu.yaml: 14 epochs, 2,170 steps
#      of 8 crops, about 40 min on 2 idle CPU cores) -> $OUT1/stage1.pt;
#   2. stage 2, a warm restart from stage 1 with the RPN best-window rule for the tiny
#      templates ($STAGE2_CONFIG, default configs/hr_mnet025_wider_cpu_stage2.yaml: 18 epochs,
#      about 43 min) -> $OUT2/stage2.pt;
#   3. the uniform weight average of the two (python -m tinylib.hr.soup) -> $EXPORT, fp16,
#      with both stages' per-epoch history (hr_mnet025_wider_history.csv, column "stage").
# About 85 min on 2 idle CPU cores in all, a few minutes on a GPU. Resumable in chunks: run it
# again after an interruption and each stage continues from its last.pt (saved every epoch);
# a finished stage only re-exports.
#   TINYLIB_DATA=../shared/data tools/train_hr_wider.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
STAGE1_CONFIG=${STAGE1_CONFIG:-configs/hr_mnet025_wider_cpu.yaml}
STAGE2_CONFIG=${STAGE2_CONFIG:-configs/hr_mnet025_wider_cpu_stage2.yaml}
OUT1=${OUT1:-runs/hr_mnet025_wider}      
OUT2=${OUT2:-runs/hr_mnet025_wider_s2}
EXPORT=${EXPORT:-tinylib/weights/hr_mnet025_wider.pt}

stage() {  # stage CONFIG OUT EXPORT [--set KEY=VALUE ...]
  local config=$1 out=$2 export=$3 resume=()
  shift 3
  [ -f "$out/last.pt" ] && resume=(--resume)
  "$PY" -m tinylib.hr.train "$config" --out "$out" "${resume[@]}" --no-progress \
      ${THREADS:+--threads "$THREADS"} --export "$export" "$@"
}
stage "$STAGE1_CONFIG" "$OUT1" "$OUT1/stage1.pt"
stage "$STAGE2_CONFIG" "$OUT2" "$OUT2/stage2.pt" --set "model.init=$OUT1/stage1.pt"
"$PY" -m tinylib.hr.soup "$EXPORT" "$OUT1/stage1.pt" "$OUT2/stage2.pt"
