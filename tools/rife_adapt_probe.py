"""Probe (issue 12's moonshot, the interpolator itself): fine-tune RIFE 4.25 on the clip's own inputs, then score it
alone on the held-out frames.

    python tools/rife_adapt_probe.py CASE [CASE...] [--steps 200] [--lr 1e-5] [--device cuda] [--json OUT]

Training triplets come from the inputs only (0, 9, 19, 29): every (a, m, b) of three inputs, m predicted from a and
b at t = (m - a) / (b - a), with the keys swapped (1 - t), left-right mirrors and random crops. The held-out frames
are used for scoring only. Besides the all-input model, two cross-checks train without one interior input's
triplets and score the rebuild of that input (what a leave-one-out check of the adapted route would see).
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.eval import rife  # noqa: E402
from sparsevid.eval.metrics import psnr, ssim  # noqa: E402
from sparsevid.fuse.learned import adapt_learned, triplets  # noqa: E402

KEYS = [0, 9, 19, 29]


def load(case: Path) -> list[np.ndarray]:
    files = sorted(glob.glob(str(case / "frame_*.png")) + glob.glob(str(case / "frame_*.webp")))
    return [cv2.imread(f)[:, :, ::-1].copy() for f in files]


def training_triplets(skip: int | None = None) -> list[tuple[int, int, int]]:
    """The pipeline's triplets of the inputs, less those that predict ``skip``."""
    return [t for t in triplets(KEYS) if t[1] != skip]


def predict(model, frames, pairs, scale: float, device) -> dict[int, np.ndarray]:
    """One pass of the network for every (target, a, b)."""
    out = {}
    for target, a, b in pairs:
        t = (target - a) / (b - a)
        out[target] = rife.interpolate_pair(frames[a], frames[b], [t], model=model, device=device,
                                            scales=rife.block_scales(scale))[0]
    return out


def adapt(frames, trips, scale, steps, lr, crop, batch, device, seed, zoom=False):
    """The pipeline's fine-tuning (:func:`sparsevid.fuse.learned.adapt_learned`) on the inputs of ``trips``."""
    keys = sorted({k for trip in trips for k in trip})
    return adapt_learned(rife.load_rife(device=device), {k: frames[k] for k in keys}, steps, lr, scale, device, seed,
                         crop, batch, trips=trips, zoom=zoom)


def score(frames, pred) -> dict:
    idx = sorted(pred)
    return {"psnr": round(float(np.mean([psnr(pred[i], frames[i]) for i in idx])), 3),
            "ssim": round(float(np.mean([ssim(pred[i], frames[i]) for i in idx])), 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--steps", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--lr", type=float, nargs="+", default=[1e-5, 3e-5])
    ap.add_argument("--scale", type=float, default=2.0)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--zoom", type=int, nargs="+", default=[0], help="0: windows at full size; 1: shrunk "
                    "towards the video's spacing (adapt_learned's zoom); both: 0 1")
    ap.add_argument("--loo", type=int, default=1, help="0: skip the leave-one-out cross-checks")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    res = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"), "cases": {}}
    for case in args.cases:
        frames = load(case)
        held = [(i, max(k for k in KEYS if k < i), min(k for k in KEYS if k > i)) for i in range(30) if i not in KEYS]
        loo = {9: [(9, 0, 19)], 19: [(19, 9, 29)]}
        base = rife.load_rife(device=args.device)
        rec = {"pretrained": {**score(frames, predict(base, frames, held, args.scale, args.device)),
                              **{f"loo {k}": score(frames, predict(base, frames, p, args.scale, args.device))["psnr"]
                                 for k, p in loo.items()}}}
        print(case.name, "pretrained", rec["pretrained"], flush=True)
        for steps in args.steps:
            for lr in args.lr:
                for zoom in args.zoom:
                    t0 = time.perf_counter()
                    m = adapt(frames, training_triplets(), args.scale, steps, lr, args.crop, args.batch, args.device,
                              0, bool(zoom))
                    secs = time.perf_counter() - t0
                    r = {**score(frames, predict(m, frames, held, args.scale, args.device)), "train_s": round(secs, 1)}
                    for k, p in loo.items() if args.loo else ():  # trained without k's triplets, scored on k
                        mk = adapt(frames, training_triplets(skip=k), args.scale, steps, lr, args.crop, args.batch,
                                   args.device, 0, bool(zoom))
                        r[f"loo {k}"] = score(frames, predict(mk, frames, p, args.scale, args.device))["psnr"]
                    name = f"{steps} steps, lr {lr:g}" + (", zoom" if zoom else "")
                    rec[name] = r
                    print(case.name, name, r, flush=True)
        res["cases"][case.name] = rec
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
