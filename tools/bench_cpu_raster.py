"""Benchmark the CPU Gaussian rasterizer and a full CPU training step.

Scene: the synthetic corridor (``sparsevid.data.synthetic``) at 424x240, ``--gaussians`` Gaussians
initialised the way the trainer does it (kNN scales from points sampled on the corridor's
surfaces, or ``--init random``: the trainer's random-frustum fallback), SH degree 3 colours.

Timed (median of ``--repeats`` after one warm-up, which includes the numba compile and is reported
separately):

* ``project``: :func:`cpu_raster.project_gaussians` forward (autograd graph built);
* ``isect``: :func:`cpu_raster.isect_tiles`;
* ``raster fwd`` / ``raster bwd``: the full :func:`rasterize` forward, and backward of a random
  linear loss of the image;
* ``train``: :meth:`Trainer.train` for ``--steps`` steps (forward + loss + backward +
  densification bookkeeping + Adam), reported as steps/s.

Usage::

    python tools/bench_cpu_raster.py [--gaussians 20000] [--steps 20] [--repeats 5] [--json out.json]

Timings on a shared machine are noisy: compare medians, not single runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

import sparsevid  # noqa: F401  (sets OMP_WAIT_POLICY=PASSIVE before torch loads libgomp)
import torch


def _median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def build_trainer(n: int, width: int, height: int, init: str, sh_interval: int):
    from sparsevid.data import synthetic
    from sparsevid.gaussians.model import InitConfig
    from sparsevid.gaussians.trainer import TrainConfig, Trainer, TrainView

    scene = synthetic.make_scene(width, height, with_points=False)
    views = [TrainView(image=fr.image, K=scene.camera.K, c2w=fr.c2w) for fr in scene.frames]
    if init == "surface":
        pts, cols = synthetic.sample_points(n, seed=0)
    else:
        pts, cols = None, None
    cfg = TrainConfig(steps=1000, quiet=True, sh_degree_interval=sh_interval,
                      init=InitConfig(random_points=n))
    return Trainer(cfg, views, pts, cols, device="cpu")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gaussians", type=int, default=20_000)
    ap.add_argument("--width", type=int, default=424)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--init", choices=["surface", "random"], default="surface")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20, help="train steps to time")
    ap.add_argument("--sh-interval", type=int, default=1,
                    help="trainer sh_degree_interval (1: SH degree 3 from step 3, the costly case)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)

    from sparsevid.gaussians import cpu_raster as cr
    from sparsevid.gaussians.rasterize import rasterize

    torch.manual_seed(0)
    W, H = args.width, args.height
    tr = build_trainer(args.gaussians, W, H, args.init, args.sh_interval)
    a = {k: v.detach().requires_grad_(True) for k, v in tr.model.activated().items()}
    v0 = tr.views[0]
    vm = torch.from_numpy(np.linalg.inv(v0.c2w)).float()[None]
    K = torch.from_numpy(v0.K).float()[None]
    bg = torch.zeros(1, 3)
    wts = torch.rand(1, H, W, 3, generator=torch.Generator().manual_seed(1))
    res: dict = {"gaussians": tr.num_gaussians, "width": W, "height": H,
                 "threads_torch": torch.get_num_threads(), "init": args.init,
                 "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
                 "load_avg_1min": os.getloadavg()[0]}

    def fwd():
        return rasterize(a["means"], a["quats"], a["scales"], a["opacities"], a["colors"], vm, K,
                         W, H, sh_degree=3, backgrounds=bg, backend="cpu")

    t0 = time.perf_counter()
    out, alpha, meta = fwd()
    (out * wts).sum().backward()
    res["first_call_s"] = time.perf_counter() - t0
    radii = meta["radii"][0].float().amax(-1)
    live = radii[radii > 0]
    res["radius_px_p10_p50_p90"] = [float(live.quantile(q)) for q in (0.1, 0.5, 0.9)]
    res["visible"] = int(live.numel())
    res["intersections"] = int(meta["n_isects"])

    with torch.no_grad():
        res["project_s"] = _median_time(lambda: cr.project_gaussians(
            a["means"], a["quats"], a["scales"], a["opacities"], vm, K, W, H), args.repeats)
        proj = cr.project_gaussians(a["means"], a["quats"], a["scales"], a["opacities"], vm, K, W, H)
    res["isect_s"] = _median_time(lambda: cr.isect_tiles(proj.means2d, proj.radii, proj.depths, W, H),
                                  args.repeats)
    res["raster_fwd_s"] = _median_time(fwd, args.repeats)

    def fwd_bwd():
        o, _, _ = fwd()
        (o * wts).sum().backward()

    res["raster_fwd_bwd_s"] = _median_time(fwd_bwd, args.repeats)
    res["raster_bwd_s"] = res["raster_fwd_bwd_s"] - res["raster_fwd_s"]

    tr.train(1)  # warm-up (optimizer state allocation)
    t0, c0 = time.perf_counter(), time.process_time()
    tr.train(args.steps)
    dt = time.perf_counter() - t0
    # CPU seconds per wall second during training: ~#cores when the machine is idle, ~1 when
    # other jobs take the second core of a 2-core machine (timings then ~2x an idle machine's)
    res["train_cpu_per_wall"] = (time.process_time() - c0) / dt
    res["train_cpu_s_per_step"] = (time.process_time() - c0) / args.steps
    res["train_steps"] = args.steps
    res["train_step_s"] = dt / args.steps
    res["train_steps_per_s"] = args.steps / dt
    res["sh_degree_at_end"] = tr.active_sh_degree()

    for k, v in res.items():
        print(f"{k:>24}: {v:.4f}" if isinstance(v, float) else f"{k:>24}: {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
