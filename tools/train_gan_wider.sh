#!/usr/bin/env bash
# Reproduce the GAN detector's weights (tinylib/weights/gan_wider.pt) and its ablations on the real
# WIDER train photos: stage 1 = MSE-only generator (configs/gan_wider_cpu_mse.yaml), stage 2 = the
# alternating GAN from it (configs/gan_wider_cpu.yaml), then the Table 2/3 ablations, each with the
# same budget and init. Resumable: re-running skips finished runs and resumes unfinished ones.
#   TINYLIB_DATA=../shared/data bash tools/train_gan_wider.sh [OUT=runs/gan] [ABLATIONS=1]
set -euo pipefail
OUT=${1:-runs/gan}
ABL=${2:-1}
PY=${PYTHON:-.venv/bin/python}
run() {  # name config [--set ...]
  local name=$1 cfg=$2; shift 2
  if [[ -f $OUT/$name/weights.pt ]]; then echo "$name: done"; return; fi
  local resume=(); [[ -f $OUT/$name/last.pt ]] && resume=(--resume)
  $PY -m tinylib.gan.train "$cfg" --out "$OUT/$name" "${resume[@]}" "$@"
}
run mse configs/gan_wider_cpu_mse.yaml
run gan configs/gan_wider_cpu.yaml --set init=$OUT/mse/weights.pt
mkdir -p tinylib/weights && cp "$OUT/gan/weights.pt" tinylib/weights/gan_wider.pt
$PY - "$OUT/gan/history.csv" <<'PYEOF'
import sys

import pandas as pd

from tinylib import measured
from tinylib.gan.train import history_summary

prov = measured.provenance("TINYLIB_DATA=../shared/data tools/train_gan_wider.sh", weights=["tinylib/weights/gan_wider.pt"],
                           notes="Losses of the training run (stage 2), means over blocks of 20 steps.")
prov["images"] = {"no val photos: the losses on the training crops": {"n": None, "hash": None}}
measured.write_table("gan_wider_history", history_summary(pd.read_csv(sys.argv[1])).round(6), prov)
PYEOF
if [[ $ABL == 1 ]]; then  # Table 2/3 ablations at a shorter budget (2 x 250 steps), beside "ours" at it
  short=(--set init=$OUT/mse/weights.pt --set train.epochs=2 --set train.max_steps_per_epoch=250)
  run short configs/gan_wider_cpu.yaml "${short[@]}"
  run no_refine configs/gan_wider_cpu.yaml "${short[@]}" --set model.refine=false
  run no_adv configs/gan_wider_cpu.yaml "${short[@]}" --set model.adv=false
  run no_cls_in_g configs/gan_wider_cpu.yaml "${short[@]}" --set model.cls_in_g=false
  run margin_1.5 configs/gan_wider_cpu.yaml "${short[@]}" --set model.margin=1.5
fi
# then measure (the numbers of notebook 09 and tinylib/weights/README.md):
#   $PY tools/eval_gan_wider.py --weights tinylib/weights/gan_wider.pt --out build/gan_wider_subset
#   $PY tools/eval_gan_wider.py --n 120 --no-sr --weights $OUT/short/weights.pt \
#       --extra no_refine=$OUT/no_refine/weights.pt --extra no_adv=$OUT/no_adv/weights.pt \
#       --extra no_cls_in_g=$OUT/no_cls_in_g/weights.pt --extra margin_1_5=$OUT/margin_1.5/weights.pt \
#       --out build/gan_ablation --ablation-csv tinylib/weights/gan_wider_ablation.csv
