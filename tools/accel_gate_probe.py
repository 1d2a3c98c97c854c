"""Probe (issue 12, session 16): the 2D route alone with its quadratic motion's acceleration halved or gated by
the flows' forward-backward consistency, beside the default (quadratic) and linear motion:

    python tools/accel_gate_probe.py CASE... [--json OUT.json]

Each CASE holds frame_0000.png ... frame_0029.png (inputs 0, 9, 19, 29); the score is the held-out PSNR of the 2D
route's two warps blended (tools/flow2d_ingredients.py's loop). Variants: ``shrink0.5`` (each key's shift beyond
the linear motion halved), ``gate`` (the shift times the consistency of the key's flows to both neighbouring
keys, per pixel), ``gate_blur`` (that consistency blurred at 3 px first).
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

from flow2d_ingredients import run  # noqa: E402
from sparsevid.fuse.flow2d import FlowConfig, consistency  # noqa: E402
from sparsevid.fuse.fusion import PairFlows, far_keys  # noqa: E402

VARIANTS = ("default", "linear", "shrink0.5", "gate", "gate_blur")


def gated_flows(variant: str) -> type[PairFlows]:
    """A :class:`PairFlows` whose quadratic shifts are changed as ``variant`` says."""

    class Gated(PairFlows):
        def fb_error(self, src: int, dst: int) -> np.ndarray:
            pair = self(min(src, dst), max(src, dst))
            return pair.err_ab if src < dst else pair.err_ba

        def gate(self, shift, src, near, far):
            if shift is None or variant == "default":
                return shift
            if variant.startswith("shrink"):
                return shift * float(variant[len("shrink"):])
            width = self.keys[src].shape[1]
            c = np.ones(shift.shape[:2], np.float32)
            for dst in (near, far):
                f = self.flow(src, dst)
                c = c * consistency(self.fb_error(src, dst), np.linalg.norm(f, axis=-1), width, self.cfg)
            if variant == "gate_blur":
                c = cv2.GaussianBlur(c, (0, 0), 3)
            return shift * c[..., None]

        def shifts(self, keys, k0, k1, t):
            sa, sb = super().shifts(keys, k0, k1, t)
            before, after = far_keys(keys, k0, k1)
            return self.gate(sa, k0, k1, before), self.gate(sb, k1, k0, after)

    return Gated


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out = {}
    for case in args.cases:
        frames = {i: cv2.imread(str(case / f"frame_{i:04d}.png"))[..., ::-1].copy() for i in range(30)}
        row = {}
        for variant in VARIANTS:
            cfg = dataclasses.replace(FlowConfig(), motion="linear") if variant == "linear" else FlowConfig()
            row[variant] = run(frames, cfg, pair_flows=gated_flows(variant))["mean"]
        out[case.name] = row
        print(case.name, "  ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "psnr": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
