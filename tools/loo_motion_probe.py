"""Probe (issue 12, session 19): can the leave-one-out choose the 2D route's motion model per clip?

    python tools/loo_motion_probe.py CASE... [--json OUT.json]

Each CASE holds frame_0000.png ... (inputs 0, 9, 19, 29). Each interior input is rebuilt by the 2D route alone (two
warps blended by time and consistency, as ``tools/flow2d_ingredients.py`` does for the video's frames) from the
other three inputs, with the quadratic motion and with linear motion. Printed: the PSNR of each rebuild and the
mean difference quadratic - linear, to set beside the same difference on the held-out video frames
(``tools/accel_gate_probe.py``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from flow2d_ingredients import blended_psnr  # noqa: E402
from sparsevid.fuse.flow2d import FlowConfig, interpolate_pair  # noqa: E402
from sparsevid.fuse.fusion import PairFlows, to_float  # noqa: E402

KEYS = [0, 9, 19, 29]


def rebuild_psnr(frames: dict[int, np.ndarray], cfg: FlowConfig, held: int) -> float:
    """PSNR of input ``held`` rebuilt by the 2D route from the other inputs of :data:`KEYS`."""
    keys = [k for k in KEYS if k != held]
    pf = PairFlows({k: frames[k] for k in keys}, cfg)
    k0, k1 = max(k for k in keys if k < held), min(k for k in keys if k > held)
    t = (held - k0) / (k1 - k0)
    wa, wb, ca, cb = interpolate_pair(to_float(frames[k0]), to_float(frames[k1]), t, pf(k0, k1), cfg,
                                      *pf.shifts(keys, k0, k1, t))
    return blended_psnr(wa, wb, ca, cb, t, frames[held])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out = {}
    for case in args.cases:
        frames = {i: cv2.imread(str(case / f"frame_{i:04d}.png"))[..., ::-1].copy() for i in KEYS}
        row = {m: [round(rebuild_psnr(frames, dataclasses.replace(FlowConfig(), motion=m), h), 3) for h in KEYS[1:-1]]
               for m in ("quadratic", "linear")}
        row["quadratic - linear"] = round(float(np.mean(row["quadratic"]) - np.mean(row["linear"])), 3)
        out[case.name] = row
        print(case.name, row, flush=True)
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "psnr": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
