"""Our 2D route alone (two warps blended, no fusion) with its ingredients switched one at a time, per segment,
beside a copy of the scorer's DIS-flow peer (BENCHMARKS.md, issue 12, session 10):

    python tools/flow2d_ingredients.py CASE [--json OUT.json]

CASE holds frame_0000.png ... frame_0029.png (inputs 0, 9, 19, 29). "peer-like" is DIS medium at its preset's
finest level, linear motion, one flow, bilinear, the two warps blended by time only (the scorer's peer); each
"+" row adds one ingredient of our default 2D route to it; the "default" rows start from our route and change one
thing; "fixed-point" solves x = p + D(p) for the source point p of each output pixel (D: the key's displacement at
t, sampled where the point starts) instead of the flow-at-t approximation.
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

from sparsevid.fuse.flow2d import FlowConfig, consistency, interpolate_pair  # noqa: E402
from sparsevid.fuse.fusion import PairFlows, to_float  # noqa: E402
from sparsevid.imaging import grid, remap  # noqa: E402

KEYS = [0, 9, 19, 29]


def time_flows(t, fl, sa, sb):
    """The flow-at-t approximation of :func:`interpolate_pair` (output pixel -> key a, key b)."""
    fta = -t * (1 - t) * fl.fab + t * t * fl.fba - (0 if sa is None else sa)
    ftb = (1 - t) * (1 - t) * fl.fab - t * (1 - t) * fl.fba - (0 if sb is None else sb)
    return fta, ftb


def fixed_point(disp: np.ndarray, u0: np.ndarray, iters: int) -> np.ndarray:
    """u with u(x) = -disp(x + u(x)), by fixed-point iteration from u0 ([H, W, 2] each)."""
    gx, gy = grid(*disp.shape[:2])
    u = u0
    for _ in range(iters):
        u = -remap(disp, gx + u[..., 0], gy + u[..., 1])
    return u


def warps_fixed_point(a, b, t, fl, cfg, sa, sb, iters=4):
    """:func:`interpolate_pair` with each key's source point solved by :func:`fixed_point`."""
    h, w = a.shape[:2]
    gx, gy = grid(h, w)
    fta, ftb = time_flows(t, fl, sa, sb)
    ua = fixed_point(t * fl.fab + (0 if sa is None else sa), fta, iters)
    ub = fixed_point((1 - t) * fl.fba + (0 if sb is None else sb), ftb, iters)
    out = []
    for img, u, err, f in ((a, ua, fl.err_ab, fl.fab), (b, ub, fl.err_ba, fl.fba)):
        mx, my = gx + u[..., 0], gy + u[..., 1]
        out.append(np.clip(remap(img, mx, my, cv2.INTER_CUBIC if cfg.cubic else cv2.INTER_LINEAR), 0, 1))
        out.append(consistency(remap(err, mx, my), np.linalg.norm(remap(f, mx, my), axis=-1), w, cfg))
    return out[0], out[2], out[1], out[3]


def blended_psnr(wa, wb, ca, cb, t: float, real: np.ndarray) -> float:
    """PSNR against ``real`` (uint8) of the two warps ``wa``, ``wb`` (float) blended as the 2D route does: by time and
    consistency (``ca``, ``cb``) plus the confidence floor, quantised as the output is."""
    wa_, wb_ = (1 - t) * (ca + 0.05), t * (cb + 0.05)
    out = (wa * wa_[..., None] + wb * wb_[..., None]) / (wa_ + wb_)[..., None]
    err = np.mean((np.round(out * 255) / 255 - to_float(real)) ** 2)
    return float(10 * np.log10(1.0 / err))


def run(frames, cfg: FlowConfig, weights: str = "conf", fixed: bool = False,
        pair_flows: type[PairFlows] = PairFlows) -> dict[str, float]:
    """Held-out PSNR per segment and overall; ``pair_flows``: the class that computes the flows and the
    quadratic shifts (a subclass varies the motion model, as ``tools/accel_gate_probe.py`` does)."""
    pf = pair_flows({k: frames[k] for k in KEYS}, cfg)
    seg: dict[str, list[float]] = {}
    for f in range(30):
        if f in KEYS:
            continue
        k0, k1 = max(k for k in KEYS if k < f), min(k for k in KEYS if k > f)
        t = (f - k0) / (k1 - k0)
        a, b = to_float(frames[k0]), to_float(frames[k1])
        args = (a, b, t, pf(k0, k1), cfg, *pf.shifts(KEYS, k0, k1, t))
        wa, wb, ca, cb = warps_fixed_point(*args) if fixed else interpolate_pair(*args)
        if weights == "plain":
            ca, cb = np.ones_like(ca), np.ones_like(cb)
        seg.setdefault(f"{k0}-{k1}", []).append(blended_psnr(wa, wb, ca, cb, t, frames[f]))
    res = {k: round(float(np.mean(v)), 3) for k, v in seg.items()}
    res["mean"] = round(float(np.mean(sum(seg.values(), []))), 3)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    frames = {i: cv2.imread(str(args.case / f"frame_{i:04d}.png"))[..., ::-1].copy() for i in range(30)}
    base = FlowConfig()
    peer = dataclasses.replace(base, motion="linear", mirrors=1, cubic=False, finest_scale=-1)
    rows = {
        "peer-like": (peer, "plain", False),
        "+ bicubic": (dataclasses.replace(peer, cubic=True), "plain", False),
        "+ 4 mirrors": (dataclasses.replace(peer, mirrors=4), "plain", False),
        "+ quadratic motion": (dataclasses.replace(peer, motion="quadratic"), "plain", False),
        "+ consistency weights": (peer, "conf", False),
        "+ finest level by size": (dataclasses.replace(peer, finest_scale=None), "plain", False),
        "default 2D route": (base, "conf", False),
        "default, bilinear": (dataclasses.replace(base, cubic=False), "conf", False),
        "default, plain weights": (base, "plain", False),
        "default, bilinear, plain weights": (dataclasses.replace(base, cubic=False), "plain", False),
        "default, fixed-point source points": (base, "conf", True),
    }
    out = {}
    for name, (cfg, weights, fixed) in rows.items():
        out[name] = run(frames, cfg, weights, fixed)
        print(f"{name:36s} " + "  ".join(f"{k} {v:.3f}" for k, v in out[name].items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "psnr": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
