"""Per-frame held-out PSNR of each route of one CPU default run, beside the default fusion and DIS flow
(BENCHMARKS.md, issue 12, session 10):

    python tools/routes_per_frame.py CASE --json OUT.json

CASE holds frame_0000.png ... frame_0029.png (inputs 0, 9, 19, 29). Columns: DIS flow (the scorer's peer), the
default, the fusion without the learned route (2D + 3D), the 2D family (2D + learned: ``mode="2d"``), our 2D route
alone, and the 3D route's frames as they enter the fusion (renders fixed and enhanced, no guided keys).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid import log  # noqa: E402
from sparsevid.data.load import load_scene  # noqa: E402
from sparsevid.eval.metrics import match_size, psnr  # noqa: E402
from sparsevid.eval.peers import dis_flow  # noqa: E402
from sparsevid.pipeline import cpu_profile, named_config, run_pipeline  # noqa: E402
from sparsevid.render.frames import to_uint8  # noqa: E402

KEYS = [0, 9, 19, 29]
VARIANTS = {"default": {}, "2D + 3D": dict(learned="off"), "2D + learned": dict(mode="2d"),
            "2D alone": dict(mode="2d", learned="off")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", type=Path)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--runs", type=Path, default=Path("/tmp/routes_per_frame"))
    args = ap.parse_args()
    log.set_quiet(True)
    cfg = named_config("default", input=args.case, output=args.runs / args.case.name, keyframes=KEYS, device="cpu",
                       overwrite=True)
    cfg.write_video, cfg.write_report = False, False
    res = run_pipeline(cfg)
    h, w = res.frames[0].shape[:2]
    scene = load_scene(args.case, keyframes=KEYS)
    gt = {f.index: match_size(f.image, (h, w)) for f in scene.frames + scene.gt_frames}
    r3 = res.route3d
    base = cpu_profile(cfg).fuse
    cols = {"DIS flow": dis_flow({k: gt[k] for k in KEYS}, 30)}
    for name, edits in VARIANTS.items():
        cols[name] = r3.fuse(dataclasses.replace(base, **edits)).frames
    cols["3D frames"] = [None if f is None else to_uint8(f[0]) for f in r3.frames]
    held = [i for i in range(30) if i not in KEYS]
    table = {n: [float(psnr(frames[i], gt[i])) for i in held] for n, frames in cols.items()}
    print("frame " + " ".join(f"{n:>13s}" for n in table))
    for j, i in enumerate(held):
        print(f"{i:5d} " + " ".join(f"{table[n][j]:13.2f}" for n in table))
    segs = {f"{k0}-{k1}": [j for j, i in enumerate(held) if k0 < i < k1] for k0, k1 in zip(KEYS, KEYS[1:])}
    for s, idx in segs.items():
        print(f"{s:>5s} " + " ".join(f"{np.mean([table[n][j] for j in idx]):13.3f}" for n in table))
    print(" mean " + " ".join(f"{np.mean(table[n]):13.3f}" for n in table))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"command": " ".join(sys.argv), "held_out": held, "psnr": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
