"""The 3D route's leave-one-out with the run's own model (leaky: that model was trained on the
held-out input) against models trained without the held-out input (``FuseConfig.loo_models``),
on the same main model, each scored beside DIS flow (BENCHMARKS.md, "leak-free leave-one-out").

    python tools/loo_leak_compare.py CASE... --json OUT.json [--device cpu|cuda] [--scale S]
        [--poses-dir DIR]

Per case: one run with ``--fuse.no-loo-models`` and one with ``--fuse.loo-models`` (the main model
is the same: same seed, same machine); then the leak-free run's fusion again with the 2D route's
error alone scaled to each frame's distance (the leaky rule). CASE holds frame_0000.png ...
frame_0029.png; inputs are frames 0, 9, 19, 29, the rest held out.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid import log  # noqa: E402
from sparsevid.data.load import load_scene  # noqa: E402
from sparsevid.eval.metrics import evaluate, match_size  # noqa: E402
from sparsevid.eval.peers import dis_flow  # noqa: E402
from sparsevid.fuse.stage import fuse_frames  # noqa: E402
from sparsevid.pipeline import named_config, run_pipeline  # noqa: E402

KEYS = [0, 9, 19, 29]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--scale", type=float, default=1.0, help="output scale")
    ap.add_argument("--poses-dir", type=Path, default=None, help="DIR/<case>/transforms.json from `sparsevid poses`")
    ap.add_argument("--runs", type=Path, default=Path("/tmp/loo_leak"))
    args = ap.parse_args()
    log.set_quiet(True)
    results = {"command": " ".join(sys.argv), "machine": platform.node(), "date": time.strftime("%Y-%m-%d"),
               "cases": {}}
    for case in args.cases:
        poses = args.poses_dir / case.name / "transforms.json" if args.poses_dir else None
        rec, runs = {}, {}
        for name, leak_free in (("leaky", False), ("leak-free", True)):
            cfg = named_config("default", input=case, output=args.runs / case.name / name, keyframes=KEYS,
                               device=args.device, overwrite=True,
                               poses_from=poses if poses is not None and poses.exists() else None)
            cfg.scale, cfg.write_video, cfg.write_report = args.scale, False, False
            cfg.fuse.loo_models = leak_free
            t0 = time.perf_counter()
            runs[name] = (cfg, run_pipeline(cfg), time.perf_counter() - t0)
        h, w = runs["leaky"][1].frames[0].shape[:2]
        scene = load_scene(case, keyframes=KEYS)
        gt = {f.index: match_size(f.image, (h, w)) for f in scene.frames + scene.gt_frames}

        def score(frames):
            m = evaluate(frames, gt, KEYS)
            return {"psnr": round(m["psnr_heldout"], 3), "ssim": round(m["ssim_heldout"], 4),
                    "sharpness": round(m["sharpness_heldout"], 3), "pulse": round(m["pulse_ratio"], 3),
                    "flicker": round(m["flicker"]["flicker"], 3)}

        rec["DIS flow"] = score(dis_flow({k: gt[k] for k in KEYS}, 30))
        for name, (cfg, res, secs) in runs.items():
            rec[name] = {**score(res.frames), "estimate": res.quality_estimate["psnr_heldout"],
                         "gain_3d": res.quality_estimate.get("gain_3d"),
                         "routes": res.quality_estimate.get("routes"), "seconds": round(secs, 1),
                         "stage_seconds": res.stage_seconds}
        cfg, res, _ = runs["leak-free"]
        r3 = res.route3d
        if r3 is not None and r3.loo is not None:
            fr = fuse_frames(r3.positions, r3.keys, cfg.fuse, r3.frames, lambda k, refs: r3.loo[k], leak_free=False)
            rec["leak-free, 2D error scaled alone"] = {**score(fr.frames),
                                                      "estimate": fr.quality_estimate["psnr_heldout"]}
        results["cases"][case.name] = rec
        print(case.name, json.dumps(rec, indent=1, default=str), flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
