"""Where the time of a CUDA training step goes (run on the GPU machine, gsplat installed).

    python tools/gpu/train_profile.py --scene .device_data/cases/gopro_sidewalk/reference_transforms.json

1. the default schedule, timed (steps/s, wall), as in ``gaussians_check.py``;
2. a torch.profiler window of 100 steps in the middle of a second run: top ops by GPU and by CPU
   time, GPU kernel time per step against wall time per step (CPU-bound or GPU-bound?);
3. variants of the step, each a full default-schedule run with the same seed: ``--variants``
   names from VARIANTS below.

Writes $OUT/train_profile.json when OUT is set.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def load_views(scene_path: Path):
    from sparsevid.data.load import load_scene
    from sparsevid.data.scene import DEFAULT_KEYFRAMES
    from sparsevid.gaussians.trainer import views_from_scene

    scene = load_scene(scene_path, keyframes=list(DEFAULT_KEYFRAMES))
    return scene, views_from_scene(scene, scale=1.0, mode="full")


def make_trainer(scene, views, **cfg):
    from sparsevid.gaussians.trainer import Trainer, TrainConfig

    return Trainer(TrainConfig(quiet=True, **cfg), views, scene.points, scene.point_colors, device="cuda")


def timed_run(scene, views, **cfg) -> dict:
    """A full default-schedule run; wall time, steps/s, last logged train PSNR, peak memory."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    tr = make_trainer(scene, views, **cfg)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    s = tr.train()
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    return {"steps": s["steps"], "wall_s": wall, "steps_per_s": s["steps"] / wall, "train_psnr_log": s["psnr"],
            "gaussians": tr.num_gaussians, "peak_mib": torch.cuda.max_memory_allocated() / 2 ** 20}


def profile_window(scene, views, start: int = 1000, steps: int = 100) -> dict:
    from torch.profiler import ProfilerActivity, profile

    tr = make_trainer(scene, views)
    tr.train(num_steps=start)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        tr.train(num_steps=steps)
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    ka = prof.key_averages()
    gpu_total = sum(e.self_device_time_total for e in ka if e.device_type == torch.autograd.DeviceType.CUDA)
    print(ka.table(sort_by="self_cuda_time_total", row_limit=30))
    print(ka.table(sort_by="self_cpu_time_total", row_limit=30))
    syncs = {e.key: e.count for e in ka if any(s in e.key for s in ("Synchronize", "cudaMemcpy", "item",
                                                                      "_local_scalar_dense", "nonzero"))}
    res = {"steps": steps, "wall_ms_per_step": 1e3 * wall / steps,
           "gpu_kernel_ms_per_step": gpu_total / 1e3 / steps, "gaussians": tr.num_gaussians, "sync_like_calls": syncs,
           "top_gpu": [(e.key, e.self_device_time_total / 1e3 / steps) for e in
                       sorted(ka, key=lambda e: -e.self_device_time_total)[:25]],
           "top_cpu": [(e.key, e.self_cpu_time_total / 1e3 / steps) for e in
                       sorted(ka, key=lambda e: -e.self_cpu_time_total)[:25]]}
    print(json.dumps({k: v for k, v in res.items() if not k.startswith("top")}, indent=1))
    return res


def _ssim2d(img, ref, window: int = 11, sigma: float = 1.5):
    """The former 11x11 single grouped conv SSIM (for comparison)."""
    import torch.nn.functional as F

    B, H, W, Cc = img.shape
    x, y = img.permute(0, 3, 1, 2), ref.permute(0, 3, 1, 2)
    stack = torch.cat([x, y, x * x, y * y, x * y], 1)
    xs = torch.arange(window, dtype=torch.float64, device=img.device) - (window - 1) / 2
    g = torch.exp(-xs * xs / (2 * sigma * sigma))
    g = (g / g.sum()).to(img.dtype)
    win = (g[:, None] * g[None, :]).expand(5 * Cc, 1, window, window).contiguous()
    mom = F.conv2d(stack, win, padding=window // 2, groups=5 * Cc)
    mx, my, xx, yy, xy = mom.split(Cc, 1)
    vx, vy, cxy = xx - mx * mx, yy - my * my, xy - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(1, keepdim=True).permute(0, 2, 3, 1)


def variant(name: str):
    """Patch the step for variant ``name`` (``baseline`` = the trainer as it is); returns
    (extra TrainConfig kwargs, undo function)."""
    import sparsevid.gaussians.losses as L

    if name == "baseline":
        return {}, lambda: None
    if name == "eager_loss":  # separable grouped convs, no compile
        return {"compile_loss": False}, lambda: None
    if name == "eager_2d":  # the former single 11x11 grouped conv
        old = L.ssim_map
        L.ssim_map = _ssim2d
        return {"compile_loss": False}, lambda: setattr(L, "ssim_map", old)
    if name == "cudnn_benchmark":
        torch.backends.cudnn.benchmark = True
        return {"compile_loss": False}, lambda: setattr(torch.backends.cudnn, "benchmark", False)
    if name == "no_ssim":  # cost probe only (changes training)
        return {"ssim_weight": 0.0, "compile_loss": False}, lambda: None
    raise SystemExit(f"unknown variant {name}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", type=Path, required=True)
    ap.add_argument("--variants", default="baseline,eager_loss,eager_2d,cudnn_benchmark")
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()
    scene, views = load_views(args.scene)
    t0 = time.perf_counter()
    make_trainer(scene, views, steps=3, compile_loss=False).train()
    report: dict = {"gsplat_load_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    make_trainer(scene, views, steps=3).train()  # torch.compile of the loss for this canvas
    report.update({"loss_compile_s": time.perf_counter() - t0, "canvas": [views[0].width, views[0].height],
                    "device": torch.cuda.get_device_name(0), "torch": torch.__version__})
    print({k: v for k, v in report.items()}, flush=True)
    report["default"] = timed_run(scene, views)
    print("default:", report["default"], flush=True)
    if not args.no_profile:
        report["profile"] = profile_window(scene, views)
    report["variants"] = {}
    for name in [v for v in args.variants.split(",") if v]:
        kw, undo = variant(name)
        try:
            report["variants"][name] = r = timed_run(scene, views, **kw)
        finally:
            undo()
        print(f"variant {name}: {r['steps_per_s']:.1f} steps/s, {r['wall_s']:.2f} s, "
              f"{r['gaussians']} gs, psnr(log) {r['train_psnr_log']:.2f}", flush=True)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "train_profile.json").write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
