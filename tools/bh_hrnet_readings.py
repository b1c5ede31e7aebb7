"""Every reading of Table 4's BH-HRNet rows that fits their parameter counts, with GFLOPs
(chapter 08, "which layer accounts for the gap"): ``tinylib/weights/bh_hrnet_readings.csv``.

    .venv/bin/python tools/bh_hrnet_readings.py [--ship]

Counted on the ``meta`` device (no data, no weights; ~20 s of CPU): for BH-HRNet32 and
BH-HRNet18, :func:`tinylib.analysis.flops.hrnet_readings`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinylib import measured  # noqa: E402
from tinylib.analysis import flops  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ship", action="store_true", help="write the table into tinylib/weights/ with provenance")
    args = p.parse_args(argv)
    table = pd.concat([flops.hrnet_readings(n) for n in ("bh_hrnet32", "bh_hrnet18")], ignore_index=True)
    print(table.round(4).to_string())
    if args.ship:
        prov = measured.provenance(
            ".venv/bin/python tools/bh_hrnet_readings.py --ship",
            notes="Readings of Table 4's BH-HRNet rows (deepest branch only): every split of stages 2-4 "
                  "into modules x blocks, shallower branches 1-4 blocks (never fewer towards higher "
                  "resolution), kept when within 0.005 M of Table 4's parameters; GFLOPs in mmcv's "
                  "convention at 640x512. is_ours: the reading HRNET_SPECS uses.")
        prov["images"] = {"no photos: layer shapes, counted at a 640x512 input on the meta device": {"n": None, "hash": None}}
        measured.write_table("bh_hrnet_readings", table, prov)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
