"""CPU training speed on a real clip: the trainer's default CPU schedule on the 4 inputs at 424x240.

    python tools/bench_cpu_train.py SCENE [--scale 0.5] [--steps 750] [--window 50] [--json out.json]

SCENE is anything ``load_scene`` reads with poses and SfM points, e.g. the pose stage's output for
the shared clip (``sparsevid poses ../shared/cases/gopro_sidewalk --keyframes 0,9,19,29 -o P``).
Inputs are scaled by ``--scale`` onto the pinhole canvas at the input K (``mode="crop"``: 848x480
-> 424x240). Gaussians start at the SfM points and grow by densification (the CPU profile's
40k cap, as in ``sparsevid run``); steps/s is reported per window of ``--window`` steps together
with the Gaussian count, so the rate "at about 20k Gaussians" can be read off.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sparsevid  # noqa: E402,F401  (OMP_WAIT_POLICY before torch)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scene", type=Path)
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=750)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--max-gaussians", type=int, default=40_000)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    import torch

    from sparsevid.data.load import load_scene
    from sparsevid.gaussians.trainer import TrainConfig, Trainer, views_from_scene

    scene = load_scene(a.scene)
    views = views_from_scene(scene, scale=a.scale, mode="crop")
    tr = Trainer(TrainConfig(steps=a.steps, quiet=True, max_gaussians=a.max_gaussians), views, scene.points,
                 scene.point_colors, device="cpu")
    rows = []
    t_all = time.perf_counter()
    while tr.step < a.steps:
        n = min(a.window, a.steps - tr.step)
        t0 = time.perf_counter()
        tr.train(num_steps=n)
        dt = time.perf_counter() - t0
        rows.append({"step": tr.step, "gaussians": tr.num_gaussians, "steps_per_s": n / dt})
        print(f"step {tr.step:5d}  {tr.num_gaussians:6d} Gaussians  {n / dt:5.2f} steps/s", flush=True)
    total = time.perf_counter() - t_all
    near20k = [r for r in rows if 15_000 <= r["gaussians"] <= 30_000]
    res = {"scene": str(a.scene), "canvas": [views[0].width, views[0].height], "steps": a.steps,
           "seconds": total, "mean_steps_per_s": a.steps / total, "windows": rows,
           "steps_per_s_at_15k_30k_gaussians": (sum(r["steps_per_s"] for r in near20k) / len(near20k)
                                                 if near20k else None),
           "final_gaussians": tr.num_gaussians, "torch_threads": torch.get_num_threads(),
           "cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]}
    print(json.dumps({k: v for k, v in res.items() if k != "windows"}, indent=1))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
