"""Probe (issue 12, session 18): the 2D route alone with other DIS settings, and with flows averaged over patch sizes.

    python tools/dis_params_probe.py CASE [CASE...] [--json OUT.json]

Each row is our default 2D route (the two warps blended by their weights, no learned route, no 3D; as
``tools/flow2d_ingredients.py``'s "default 2D route") with the DIS objects of :func:`sparsevid.imaging.make_dis`
changed: single settings on top of the preset (medium: patch 8, stride 3, 25 gradient-descent and 5 variational
iterations), or "mean of" several DIS objects, each flow the mean of theirs (each still averaged over the route's
4 mirrorings). The probe swaps the factory that :mod:`sparsevid.fuse.flow2d` calls for the length of each row only;
nothing in the pipeline has these settings. Held-out PSNR, mean of the 26 frames (inputs 0, 9, 19, 29).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sparsevid.fuse.flow2d as flow2d  # noqa: E402
from flow2d_ingredients import run  # noqa: E402
from sparsevid.fuse.flow2d import FlowConfig  # noqa: E402
from sparsevid.imaging import make_dis  # noqa: E402

P12 = {"PatchSize": 12, "PatchStride": 4}
VR10 = {"VariationalRefinementIterations": 10}
#: row name -> the DIS settings whose flows are averaged (one dict: a single DIS object)
ROWS = {
    "default 2D route": [{}],
    "variational iterations 10": [VR10],
    "variational iterations 20": [{"VariationalRefinementIterations": 20}],
    "patch 12, stride 4": [P12],
    "stride 2": [{"PatchStride": 2}],
    "gradient descent 50": [{"GradientDescentIterations": 50}],
    "patch 12, stride 4, variational 10": [{**P12, **VR10}],
    "mean of patch 8 and 12": [{}, P12],
    "mean of patch 8 and 12, variational 10": [VR10, {**P12, **VR10}],
    "mean of patch 8 and 16": [{}, {"PatchSize": 16, "PatchStride": 6}],
    "mean of patch 8, 12 and 16": [{}, P12, {"PatchSize": 16, "PatchStride": 6}],
}


class MeanDIS:
    """Several DIS objects as one: ``calc`` returns the mean of their flows."""

    def __init__(self, members):
        self.members = members

    def calc(self, a, b, flow):
        return sum(d.calc(a, b, None) for d in self.members) / len(self.members)


@contextlib.contextmanager
def dis_settings(settings: list[dict]):
    """flow2d's DIS factory swapped for one that applies ``settings`` (and averages over several), restored after."""
    def factory(preset, width, finest_scale, min_width):
        members = []
        for extra in settings:
            d = make_dis(preset, width, finest_scale, min_width)
            for key, value in extra.items():
                getattr(d, "set" + key)(value)
            members.append(d)
        return members[0] if len(members) == 1 else MeanDIS(members)

    saved = flow2d.make_dis
    flow2d.make_dis = factory
    try:
        yield
    finally:
        flow2d.make_dis = saved


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--rows", default=";".join(ROWS), help="row names, separated by semicolons")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    res = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"), "psnr": {}}
    for case in args.cases:
        frames = {i: cv2.imread(str(case / f"frame_{i:04d}.png"))[..., ::-1].copy() for i in range(30)}
        for name in args.rows.split(";"):
            with dis_settings(ROWS[name]):
                psnr = run(frames, FlowConfig(), "conf", False)["mean"]
            res["psnr"].setdefault(case.name, {})[name] = psnr
            print(f"{case.name:16s} {name:42s} {psnr:.3f}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))
    rows = args.rows.split(";")
    base = rows[0]
    print("mean change over the first row:")
    for name in rows[1:]:
        d = [res["psnr"][c][name] - res["psnr"][c][base] for c in res["psnr"]]
        print(f"  {name:42s} {np.mean(d):+.3f} (min {min(d):+.3f}, max {max(d):+.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
