"""Probe (issue 12): does the leave-one-out's ranking of the 2D and learned routes, measured over spans of 19-20 and
29 frames, extrapolate to the video's spacing of 9-10 frames?

    python tools/span_law_probe.py CASE... [--json OUT.json]

Each CASE holds frame_0000.png ... frame_0029.png (inputs 0, 9, 19, 29). Per route (the 2D route: two DIS warps,
linear motion, blended by consistency; the learned route: RIFE 4.25, one pass, the frame size's scale), the mean
squared error of: the video's held-out frames (the truth the fusion needs), the leave-one-out rebuilds (9 from 0, 19;
19 from 9, 29: span 19-20) and the rebuilds over the outer pair (9 and 19 from 0, 29: span 29).
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

from sparsevid.eval import rife  # noqa: E402
from sparsevid.fuse.flow2d import FlowConfig, interpolate_pair, pair_flow  # noqa: E402
from sparsevid.fuse.fusion import to_float  # noqa: E402

KEYS = [0, 9, 19, 29]


def flow_route(frames, a, b, ts, cfg):
    fl = pair_flow(frames[a], frames[b], cfg)
    out = []
    for t in ts:
        wa, wb, ca, cb = interpolate_pair(to_float(frames[a]), to_float(frames[b]), t, fl, cfg)
        wa_, wb_ = (1 - t) * (ca + 0.05), t * (cb + 0.05)
        out.append((wa * wa_[..., None] + wb * wb_[..., None]) / (wa_ + wb_)[..., None])
    return out


def learned_route(frames, a, b, ts, model):
    h, w = frames[a].shape[:2]
    imgs = rife.interpolate_pair(frames[a], frames[b], list(ts), model=model, scales=rife.scales_for(h, w))
    return [to_float(i) for i in imgs]


def mse(pred, truth) -> float:
    return float(np.mean((np.round(pred * 255) / 255 - to_float(truth)) ** 2))


def loo19(frames, route) -> float:
    """Mean squared error of the leave-one-out rebuilds: 9 from 0 and 19, 19 from 9 and 29."""
    return float(np.mean([mse(route(frames, a, b, [(k - a) / (b - a)])[0], frames[k])
                          for a, k, b in ((0, 9, 19), (9, 19, 29))]))


def shrunk(frames, factor: float) -> dict:
    """The inputs shrunk by ``factor`` (INTER_AREA)."""
    return {k: cv2.resize(frames[k], None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA) for k in KEYS}


def measure(frames, route, shrink: float | None = None, only_loo: bool = False) -> dict[str, float]:
    out = {}
    if not only_loo:
        errs = []
        for k0, k1 in zip(KEYS, KEYS[1:]):
            between = list(range(k0 + 1, k1))
            preds = route(frames, k0, k1, [(f - k0) / (k1 - k0) for f in between])
            errs += [mse(p, frames[f]) for p, f in zip(preds, between)]
        out["video"] = float(np.mean(errs))
    out["loo19"] = loo19(frames, route)
    if not only_loo:
        preds = route(frames, 0, 29, [9 / 29, 19 / 29])
        out["loo29"] = float(np.mean([mse(p, frames[k]) for p, k in zip(preds, (9, 19))]))
    if shrink is not None:
        out["loo19_shrunk"] = loo19(shrunk(frames, shrink), route)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", type=Path, nargs="+")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--shrink", type=float, default=None, help="also the leave-one-out on inputs shrunk by this")
    ap.add_argument("--only-loo", action="store_true", help="the leave-one-out only; the video's figure from --truth")
    ap.add_argument("--truth", type=Path, default=None, help="an earlier JSON of this probe (with --only-loo)")
    args = ap.parse_args()
    truth = json.loads(args.truth.read_text())["cases"] if args.truth else {}
    model = rife.load_rife()
    cfg = dataclasses.replace(FlowConfig(), motion="linear")
    res = {}
    for case in args.cases:
        frames = {i: cv2.imread(str(case / f"frame_{i:04d}.png"))[..., ::-1].copy()
                  for i in (KEYS if args.only_loo else range(30))}
        r = {"2d": measure(frames, lambda fr, a, b, ts: flow_route(fr, a, b, ts, cfg), args.shrink, args.only_loo),
             "learned": measure(frames, lambda fr, a, b, ts: learned_route(fr, a, b, ts, model), args.shrink,
                                args.only_loo)}
        db = {s: 10 * np.log10(r["learned"][s] / r["2d"][s]) for s in r["2d"]}
        if args.only_loo and case.name in truth:
            db["video"] = truth[case.name]["learned_minus_2d_db"]["video"]
        res[case.name] = {"mse": r, "learned_minus_2d_db": {k: round(float(v), 3) for k, v in db.items()}}
        print(f"{case.name:18s} learned vs 2d error (dB, + = learned worse): "
              + "  ".join(f"{k} {v:+.2f}" for k, v in db.items()), flush=True)
        if args.json:
            args.json.write_text(json.dumps({"command": " ".join(sys.argv), "cases": res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
