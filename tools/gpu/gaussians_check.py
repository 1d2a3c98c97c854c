"""GPU check of the Gaussian splatting stage (run on a CUDA machine with gsplat installed).

    python tools/gpu/gaussians_check.py --scene /path/to/gopro_sidewalk/reference_transforms.json

1. parity: our CPU rasterizer vs gsplat on random scenes -- image max abs diff (< 1e-3 required)
   and gradient relative error (< 1e-2 required) for means, quats, scales, opacities, colors;
2. training benchmark on the scene (inputs 0,9,19,29 at the reference poses, full-FOV canvas):
   steps/s, time for the default schedule (gsplat's one-time compile excluded), peak GPU memory,
   train PSNR, held-out PSNR/SSIM on the other frames rendered at their reference poses (pinhole
   at the input K, compared with the raw frames = a cropped comparison), Gaussian count;
3. CPU steps/s of the same trainer at 424x240 (2 threads and all threads).

Prints a summary table; writes $OUT/gaussians_check.json when $OUT is set.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sparsevid.gaussians.rasterize import rasterize  # noqa: E402


def _scene(n: int, w: int, h: int, cams: int, sh: bool, seed: int):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) - 0.5) * torch.tensor([4.0, 3.0, 2.0]) + torch.tensor([0, 0, 4.0])
    quats = torch.randn(n, 4, generator=g)
    scales = torch.rand(n, 3, generator=g) * 0.08 + 0.01
    opac = torch.rand(n, generator=g) * 0.9 + 0.05
    cols = torch.randn(n, 16, 3, generator=g) * 0.3 if sh else torch.rand(n, 3, generator=g)
    vm = torch.eye(4)[None].repeat(cams, 1, 1)
    for c in range(1, cams):
        vm[c, 0, 3] = 0.1 * c
    f = 0.8 * w
    K = torch.tensor([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])[None].repeat(cams, 1, 1)
    bg = torch.rand(cams, 3, generator=g)
    return [means, quats, scales, opac, cols], vm, K, bg


def parity(n: int, w: int, h: int, cams: int, sh: bool, mode: str, seed: int) -> dict:
    tensors, vm, K, bg = _scene(n, w, h, cams, sh, seed)
    wts = torch.rand(cams, h, w, 4, generator=torch.Generator().manual_seed(seed + 1))
    out = {}
    for dev in ("cpu", "cuda"):
        ps = [t.clone().to(dev).requires_grad_(True) for t in tensors]
        img, alpha, _ = rasterize(*ps, vm.to(dev), K.to(dev), w, h, sh_degree=3 if sh else None,
                                  backgrounds=bg.to(dev), render_mode="RGB+ED", rasterize_mode=mode,
                                  backend=dev)
        rgb_d = torch.cat([img[..., :3], img[..., 3:] * alpha], -1)  # accumulated depth (smooth)
        ((rgb_d * wts.to(dev)).sum() + alpha.sum()).backward()
        out[dev] = (img[..., :3].detach().cpu(), alpha.detach().cpu(), [p.grad.detach().cpu() for p in ps])
    # float64 CPU render as the arbiter: at the worst pixel, which backend is off?
    ps64 = [t.clone().double() for t in tensors]
    img64, _, _ = rasterize(*ps64, vm.double(), K.double(), w, h, sh_degree=3 if sh else None,
                            backgrounds=bg.double(), render_mode="RGB+ED", rasterize_mode=mode, backend="cpu")
    img64 = img64[..., :3]
    diff = (out["cpu"][0] - out["cuda"][0]).abs().amax(-1)
    worst = divmod(int(diff.flatten().argmax()), w * h)
    c, rem = worst
    y, x = divmod(rem, w)
    names = ["means", "quats", "scales", "opacities", "colors"]
    res = {"worst_pixel": [c, y, x],
           "worst_cpu32_vs_f64": float((out["cpu"][0][c, y, x].double() - img64[c, y, x]).abs().max()),
           "worst_cuda_vs_f64": float((out["cuda"][0][c, y, x].double() - img64[c, y, x]).abs().max()),
           "cpu32_vs_f64_max": float((out["cpu"][0].double() - img64).abs().max()),
           "cuda_vs_f64_max": float((out["cuda"][0].double() - img64).abs().max()),
           "case": f"N={n} {w}x{h} C={cams} {'SH3' if sh else 'RGB'} {mode}",
           "image_max_abs": float((out["cpu"][0] - out["cuda"][0]).abs().max()),
           "alpha_max_abs": float((out["cpu"][1] - out["cuda"][1]).abs().max()),
           "pixels_over_1e-3": int(((out["cpu"][0] - out["cuda"][0]).abs().amax(-1) > 1e-3).sum())}
    for nm, a, b in zip(names, out["cpu"][2], out["cuda"][2]):
        res[f"grad_rel_{nm}"] = float((a - b).norm() / b.norm().clamp_min(1e-12))
    res["pass"] = res["image_max_abs"] < 1e-3 and all(res[f"grad_rel_{k}"] < 1e-2 for k in names)
    return res


def _psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = d.mean() if mask is None else d[mask].mean()
    return float(-10 * np.log10(max(mse, 1e-12)))


def train_bench(scene_path: Path, steps: int | None) -> dict:
    from skimage.metrics import structural_similarity

    from sparsevid.data.load import load_scene
    from sparsevid.data.scene import DEFAULT_KEYFRAMES
    from sparsevid.gaussians.trainer import Trainer, TrainConfig, views_from_scene

    scene = load_scene(scene_path, keyframes=list(DEFAULT_KEYFRAMES))
    views = views_from_scene(scene, scale=1.0, mode="full")
    # one-time gsplat JIT/compile + CUDA context, outside the timing
    t0 = time.perf_counter()
    warm = Trainer(TrainConfig(steps=3, quiet=True), views, scene.points, scene.point_colors, device="cuda")
    warm.train()
    compile_s = time.perf_counter() - t0
    del warm
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    tr = Trainer(TrainConfig(steps=steps, quiet=True), views, scene.points, scene.point_colors, device="cuda")
    n0 = tr.num_gaussians
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    summary = tr.train()
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2 ** 20
    # train PSNR on the canvas (valid pixels)
    out = tr.render(np.stack([v.c2w for v in views]), np.stack([v.K for v in views]), views[0].width, views[0].height)
    rgb = out["rgb"].cpu().numpy()
    train_psnr = float(np.mean([_psnr(rgb[i], views[i].image, views[i].mask[..., 0] > 0.5) for i in range(len(views))]))
    # held-out at the reference poses: pinhole with the input K, compared with the raw frames
    cam = scene.camera
    K = cam.to_pinhole().K
    gts = [f for f in scene.gt_frames if f.c2w is not None]
    ps, ss = [], []
    for s in range(0, len(gts), 8):
        chunk = gts[s:s + 8]
        r = tr.render(np.stack([f.c2w for f in chunk]), np.stack([K] * len(chunk)), cam.width, cam.height)
        pred = (r["rgb"].cpu().numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
        for p, f in zip(pred, chunk):
            ps.append(_psnr(p / 255.0, f.image / 255.0))
            ss.append(float(structural_similarity(p, f.image, channel_axis=2, data_range=255)))
    return {"canvas": f"{views[0].width}x{views[0].height}", "steps": summary["steps"],
            "steps_per_s": summary["steps"] / wall, "train_seconds": wall, "compile_seconds": compile_s,
            "peak_gpu_mib": peak, "train_psnr": train_psnr, "heldout_psnr": float(np.mean(ps)),
            "heldout_ssim": float(np.mean(ss)), "heldout_frames": len(ps), "gaussians_init": n0,
            "gaussians_final": tr.num_gaussians}


def cpu_bench(scene_path: Path, threads: int, steps: int = 20) -> dict:
    from sparsevid.data.load import load_scene
    from sparsevid.data.scene import DEFAULT_KEYFRAMES
    from sparsevid.gaussians.trainer import Trainer, TrainConfig, views_from_scene

    torch.set_num_threads(threads)
    scene = load_scene(scene_path, keyframes=list(DEFAULT_KEYFRAMES))
    views = views_from_scene(scene, scale=0.5, mode="full")
    tr = Trainer(TrainConfig(steps=1000, quiet=True), views, scene.points, scene.point_colors, device="cpu")
    tr.train(num_steps=3)
    t0 = time.perf_counter()
    tr.train(num_steps=steps)
    dt = time.perf_counter() - t0
    return {"threads": threads, "canvas": f"{views[0].width}x{views[0].height}", "steps": steps,
            "steps_per_s": steps / dt, "gaussians": tr.num_gaussians}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", type=Path, required=True,
                    help="scene for load_scene (e.g. .../gopro_sidewalk/reference_transforms.json)")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the trainer's default)")
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--parity-only", action="store_true", help="only the parity checks")
    ap.add_argument("--train-only", action="store_true", help="only the training benchmark")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 1
    report: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    report["parity"] = [] if args.train_only else [parity(2000, 256, 192, 2, False, "classic", 0),
                        parity(2000, 256, 192, 1, True, "classic", 1),
                        parity(3000, 320, 200, 1, True, "antialiased", 2),
                        parity(3000, 320, 200, 1, True, "antialiased", 3),
                        parity(3000, 320, 200, 1, True, "classic", 2)]
    if not args.parity_only:
        report["train"] = train_bench(args.scene, args.steps)
    if not args.skip_cpu and not args.parity_only:
        report["cpu"] = [cpu_bench(args.scene, 2), cpu_bench(args.scene, os.cpu_count() or 2)]

    print("\n== parity: ours (CPU) vs gsplat (CUDA) ==")
    for r in report["parity"]:
        print(f"{r['case']:<36} img {r['image_max_abs']:.2e}  alpha {r['alpha_max_abs']:.2e}  "
              + "  ".join(f"{k[9:]} {r[k]:.1e}" for k in r if k.startswith("grad_rel_"))
              + f"  px>1e-3 {r['pixels_over_1e-3']}  {'PASS' if r['pass'] else 'FAIL'}"
              + f"  | vs float64 at worst px: ours {r['worst_cpu32_vs_f64']:.1e} gsplat {r['worst_cuda_vs_f64']:.1e}"
              + f"; whole image: ours {r['cpu32_vs_f64_max']:.1e} gsplat {r['cuda_vs_f64_max']:.1e}")
    t = report.get("train")
    if t:
        print("\n== training (cuda) ==")
        for k, v in t.items():
            print(f"{k:<18} {v:.3f}" if isinstance(v, float) else f"{k:<18} {v}")
        print(f"targets: >= 200 steps/s -> {'PASS' if t['steps_per_s'] >= 200 else 'FAIL'}; "
              f"schedule <= 20 s -> {'PASS' if t['train_seconds'] <= 20 else 'FAIL'}")
    for c in report.get("cpu", []):
        print(f"cpu {c['threads']:>2} threads {c['canvas']}: {c['steps_per_s']:.2f} steps/s ({c['gaussians']} gs)")
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gaussians_check.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
