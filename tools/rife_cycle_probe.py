"""Probe (issue 12, the learned route): fine-tune RIFE 4.25 on the clip with a cycle-consistency loss at the video's
own spans, beside the pipeline's triplet fine-tuning, and score RIFE alone on the held-out frames.

    python tools/rife_cycle_probe.py CASE [CASE...] [--device cuda] [--json OUT] [--variants NAME,...]

The pipeline's fine-tuning (:func:`sparsevid.fuse.learned.adapt_learned`) predicts each input from two others around
it: pairs 19-29 frames apart, two to three times the video's spans. The cycle loss (after Reda et al., "Unsupervised
Video Interpolation Using Cycle Consistency", ICCV 2019) supervises the spans the video uses: for an interior input
m with neighbours a < m < b, the network makes the frames halfway between (a, m) and between (m, b), then the frame
at m between those two; that frame is compared with the real input m. Every pair the network sees is one input
spacing apart. Windows, swaps and mirrors are drawn as in the pipeline's fine-tuning. The held-out frames are used
for scoring only.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rife_adapt_probe import KEYS, load, predict, score  # noqa: E402
from sparsevid.eval import rife  # noqa: E402
from sparsevid.fuse.learned import ClipWindows, triplets  # noqa: E402


def fine_tune(model, frames: dict[int, np.ndarray], steps: int, lr: float, w_trip: float, w_cycle: float,
              scale: float, device, seed: int = 0, crop: int = 256, batch: int = 4):
    """A copy of ``model`` fine-tuned with ``w_trip`` x the pipeline's triplet L1 loss + ``w_cycle`` x the cycle L1 loss."""
    scales = rife.block_scales(scale)
    keys = sorted(frames)
    h, w = frames[keys[0]].shape[:2]
    grid = int(np.ceil(4 * max(scales)))
    crop = min(crop, h // grid * grid, w // grid * grid)
    dev = torch.device(device)
    net = copy.deepcopy(model).to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    windows = ClipWindows(frames, crop, dev, seed)  # the pipeline's draws: w_cycle 0 reproduces adapt_learned
    trips = triplets(keys)
    cycles = [(keys[i - 1], keys[i], keys[i + 1]) for i in range(1, len(keys) - 1)]

    def call(x0, x1, ts):
        t_in = ts if torch.is_tensor(ts) else torch.tensor(ts, device=dev, dtype=torch.float32).reshape(-1, 1, 1, 1)
        return net(x0, x1, t_in, scales)

    with torch.enable_grad():
        for _ in range(steps):
            loss = torch.zeros((), device=dev)
            if w_trip > 0:
                x0, x1, y, t_in = windows.triplet_batch(trips, batch)
                loss = loss + w_trip * F.l1_loss(call(x0, x1, t_in), y)
            if w_cycle > 0:
                a0, m0, b0, t2 = [], [], [], []
                for _ in range(batch):
                    a, m, b = cycles[windows.draw(len(cycles))]
                    wa, wm, wb = windows.window((a, m, b))
                    la, lb = (a + m) / 2.0, (m + b) / 2.0
                    t = (m - la) / (lb - la)
                    if windows.draw(2):  # time reversed
                        wa, wb, t = wb, wa, 1.0 - t
                    a0.append(wa), m0.append(wm), b0.append(wb), t2.append(t)
                xa, xm, xb = torch.stack(a0), torch.stack(m0), torch.stack(b0)
                left = call(xa, xm, [0.5] * batch)
                right = call(xm, xb, [0.5] * batch)
                loss = loss + w_cycle * F.l1_loss(call(left, right, t2), xm)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


VARIANTS = {  # name: (steps, lr, w_trip, w_cycle)
    "triplets 100 3e-6 (pipeline)": (100, 3e-6, 1.0, 0.0),
    "cycle 100 3e-6": (100, 3e-6, 0.0, 1.0),
    "triplets+cycle 100 3e-6": (100, 3e-6, 1.0, 1.0),
    "triplets+cycle 100 1e-5": (100, 1e-5, 1.0, 1.0),
    "triplets+cycle 300 3e-6": (300, 3e-6, 1.0, 1.0),
    "cycle 300 1e-5": (300, 1e-5, 0.0, 1.0),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--scale", type=float, default=2.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps-cap", type=int, default=None, help="cap every variant's steps (smoke tests)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    names = [v for v in args.variants.split(",") if v]
    res = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"), "cases": {}}
    for case in args.cases:
        frames = load(case)
        held = [(i, max(k for k in KEYS if k < i), min(k for k in KEYS if k > i)) for i in range(30) if i not in KEYS]
        base = rife.load_rife(device=args.device)
        rec = {"pretrained": score(frames, predict(base, frames, held, args.scale, args.device))}
        print(case.name, "pretrained", rec["pretrained"], flush=True)
        for name in names:
            steps, lr, wt, wc = VARIANTS[name]
            steps = min(steps, args.steps_cap) if args.steps_cap else steps
            t0 = time.perf_counter()
            m = fine_tune(base, {k: frames[k] for k in KEYS}, steps, lr, wt, wc, args.scale, args.device)
            secs = time.perf_counter() - t0
            rec[name] = {**score(frames, predict(m, frames, held, args.scale, args.device)), "train_s": round(secs, 1)}
            print(case.name, name, rec[name], flush=True)
        res["cases"][case.name] = rec
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
