"""Tune / benchmark the weight-free fixer offline on dumped renders (CPU).

Usage::

    python tools/tune_fixer.py RENDER_DIR CASE_DIR [--configs render,reproject,dis_flow] [--json OUT.json]

``RENDER_DIR`` holds what ``tools/gpu/dump_renders.py`` writes: ``path_rgb.npz`` (path_rgb
[T,Hc,Wc,3] uint8, path_alpha [T,Hc,Wc,1] uint8), ``path_depth.npz`` (path_depth [T,Hc,Wc,1]),
``meta.npz`` (path_c2ws, is_input, input_rgb, input_depth, input_c2ws, K, mask, scale) and
``camera.json`` (the scene camera at full resolution). ``CASE_DIR`` holds the 30 ground-truth PNGs.

Every configuration is scored like the pipeline: canvas frames -> re-distorted to the input lens at
the render scale -> uint8 -> :func:`sparsevid.eval.metrics.evaluate` against the ground truth
resized (INTER_AREA) to that size. Besides the held-out / input PSNR / SSIM and flicker it prints,
for fixer configurations, the raw (per-frame, unsmoothed) fixer output as a pseudo training view
would see it: its mean confidence, the canvas PSNR of the fixed image against the (undistorted)
ground truth at held-out times, and the PSNR of fixed vs rendered pixels where the confidence is
at least 0.5 -- a confidence is only useful when that gap is positive.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from sparsevid.data.camera import Camera
from sparsevid.data.scene import DEFAULT_KEYFRAMES
from sparsevid.eval import peers
from sparsevid.eval.metrics import evaluate
from sparsevid.fixer.base import FixRequest, RefViews, get_fixer
from sparsevid.fixer.enhance import EnhanceConfig, enhance_frames
from sparsevid.poses.undistort import Undistorter

INPUTS = DEFAULT_KEYFRAMES


def load_renders(render_dir: Path) -> dict:
    """The dumped renders as numpy arrays (see the module docstring)."""
    rgb = np.load(render_dir / "path_rgb.npz")
    meta = np.load(render_dir / "meta.npz")
    out = {k: meta[k] for k in meta.files}
    out["path_rgb"] = rgb["path_rgb"]
    out["path_alpha"] = rgb["path_alpha"]
    out["path_depth"] = np.load(render_dir / "path_depth.npz")["path_depth"]
    out["camera"] = Camera.from_dict(json.loads((render_dir / "camera.json").read_text()))
    return out


def load_gt(case_dir: Path, size: tuple[int, int], num: int = 30) -> dict[int, np.ndarray]:
    """{index: [H, W, 3] uint8 RGB} ground truth resized to ``size`` = (width, height)."""
    gt = {}
    for i in range(num):
        p = case_dir / f"frame_{i:04d}.png"
        img = cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        gt[i] = cv2.resize(img, size, interpolation=cv2.INTER_AREA) if img.shape[1::-1] != size else img
    return gt


def to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(x, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def distort_all(canvas: np.ndarray, und: Undistorter, interp: int = cv2.INTER_LINEAR) -> list[np.ndarray]:
    """[T, Hc, Wc, 3] float 0..1 or uint8 canvas frames -> T x [H, W, 3] uint8 in the input lens."""
    out = []
    for f in canvas:  # like sparsevid.render.frames.distort_frames: float is re-distorted, then quantised
        o = und.distort_image(f, interpolation=interp)
        out.append(o if o.dtype == np.uint8 else to_u8(o))
    return out


def build_request(d: dict, frames: list[int] | None = None) -> tuple[FixRequest, RefViews]:
    """The enhancement request of the dumped path (canvas space, float32)."""
    T = len(d["path_rgb"])
    sel = list(range(T)) if frames is None else frames
    renders = torch.from_numpy(d["path_rgb"][sel].astype(np.float32) / 255.0)
    alpha = torch.from_numpy(d["path_alpha"][sel].astype(np.float32) / 255.0)
    depth = torch.from_numpy(d["path_depth"][sel].astype(np.float32))
    K = torch.from_numpy(d["K"]).float()
    valid1 = torch.from_numpy(d["mask"].astype(np.float32))[None, ..., None]
    R = len(d["input_rgb"])
    refs = RefViews(torch.from_numpy(d["input_rgb"].astype(np.float32) / 255.0), K.expand(R, 3, 3).clone(),
                    torch.from_numpy(d["input_c2ws"]).double(),
                    torch.from_numpy(d["input_depth"].astype(np.float32)), valid1.expand(R, -1, -1, -1).clone())
    n = len(sel)
    req = FixRequest(renders, K.expand(n, 3, 3).clone(), torch.from_numpy(d["path_c2ws"][sel]).double(), refs,
                     depth=depth, alpha=alpha, valid=valid1.expand(n, -1, -1, -1).clone(),
                     times=torch.tensor([i / 30.0 for i in sel], dtype=torch.float32))
    return req, refs


def canvas_psnr(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
    """PSNR of float images [H, W, 3] over mask [H, W] (bool)."""
    if m.sum() == 0:
        return float("nan")
    mse = float(np.mean((a[m] - b[m]) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-10))


def pseudo_view_stats(d: dict, images: np.ndarray, conf: np.ndarray, gt_canvas: np.ndarray) -> dict:
    """Quality of raw fixer output as pseudo training views at held-out times (canvas space)."""
    held = [i for i in range(len(images)) if not d["is_input"][i]]
    valid = d["mask"]
    ren = d["path_rgb"].astype(np.float32) / 255.0
    p_fix, p_ren, p_fix_hi, p_ren_hi, frac_hi, c_mean = [], [], [], [], [], []
    for i in held:
        p_fix.append(canvas_psnr(images[i], gt_canvas[i], valid))
        p_ren.append(canvas_psnr(ren[i], gt_canvas[i], valid))
        hi = valid & (conf[i, ..., 0] >= 0.5)
        frac_hi.append(float(hi.sum() / valid.sum()))
        p_fix_hi.append(canvas_psnr(images[i], gt_canvas[i], hi))
        p_ren_hi.append(canvas_psnr(ren[i], gt_canvas[i], hi))
        c_mean.append(float(conf[i, ..., 0][valid].mean()))
    nm = (lambda x: float(np.nanmean(x)))
    return {"conf_mean": nm(c_mean), "frac_conf_hi": nm(frac_hi), "psnr_fixed_canvas": nm(p_fix),
            "psnr_render_canvas": nm(p_ren), "psnr_fixed_hi": nm(p_fix_hi), "psnr_render_hi": nm(p_ren_hi)}


def run_fixer(d: dict, fixer_name: str, options: dict, enhance: EnhanceConfig) -> tuple[np.ndarray, dict]:
    """Enhance the whole path; returns the canvas frames [T, Hc, Wc, 3] float and diagnostics."""
    req, refs = build_request(d)
    fixer = get_fixer(fixer_name, **options)
    t0 = time.perf_counter()
    res = enhance_frames(fixer, req.renders, req.Ks, req.c2ws, refs, depth=req.depth, alpha=req.alpha,
                         valid=req.valid, times=req.times, config=enhance)
    secs = time.perf_counter() - t0
    raw = res.extras.get("raw_images", None)
    raw_conf = res.extras.get("raw_confidence", res.confidence)
    return res.images.numpy(), {"seconds": secs, "raw_images": None if raw is None else raw.numpy(),
                                "raw_confidence": raw_conf.numpy(), "confidence": res.confidence.numpy()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("render_dir", type=Path)
    ap.add_argument("case_dir", type=Path)
    ap.add_argument("--configs", default="render,reproject,dis_flow",
                    help="comma list: render, dis_flow, reproject, reproject_raw (no temporal smoothing), "
                         "or reproject:key=value:key=value (ReprojectConfig overrides)")
    ap.add_argument("--json", type=Path, default=None, help="write all results here")
    ap.add_argument("--io-interp", choices=["linear", "cubic"], default="linear",
                    help="interpolation of the canvas <-> lens resampling (the pipeline uses linear; cubic "
                         "re-undistorts the input frames from the ground truth and re-distorts the output with "
                         "bicubic interpolation, to measure what that would gain)")
    ap.add_argument("--threads", type=int, default=0, help="torch/OpenCV threads (0 = library default)")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)

    d = load_renders(args.render_dir)
    und = Undistorter.for_camera(d["camera"], float(d["scale"]))
    if und.canvas_size != (d["path_rgb"].shape[2], d["path_rgb"].shape[1]):
        print(f"canvas mismatch: undistorter {und.canvas_size}, renders {d['path_rgb'].shape}", file=sys.stderr)
        return 2
    gt = load_gt(args.case_dir, und.size, len(d["path_rgb"]))
    interp = cv2.INTER_CUBIC if args.io_interp == "cubic" else cv2.INTER_LINEAR
    gt_canvas = np.stack([und.undistort_image(gt[i], interpolation=interp)
                          for i in range(len(gt))]).astype(np.float32) / 255.0
    if args.io_interp == "cubic":
        d["input_rgb"] = np.stack([und.undistort_image(gt[i], interpolation=interp) for i in INPUTS])

    rows, results = [], {}
    for spec in [s for s in args.configs.split(",") if s]:
        name, *kv = spec.split(":")
        opts = {}
        for item in kv:
            k, v = item.split("=", 1)
            opts[k] = json.loads(v) if v not in ("True", "False") else v == "True"
        extra: dict = {}
        t0 = time.perf_counter()
        if name == "render":
            frames = distort_all(d["path_rgb"], und, interp)
        elif name == "dis_flow":
            keys = {i: gt[i] for i in INPUTS}
            frames = peers.dis_flow(keys, len(gt))
        elif name in ("reproject", "reproject_raw"):
            enh = EnhanceConfig() if name == "reproject" else EnhanceConfig(temporal_sigma=0.0, spatial_sigma_px=0.0)
            for k in [k for k in opts if k.startswith("enh_")]:
                setattr(enh, k[4:], opts.pop(k))
            canvas, info = run_fixer(d, "reproject", opts, enh)
            frames = distort_all(canvas, und, interp)
            raw = info["raw_images"] if info["raw_images"] is not None else canvas
            extra = pseudo_view_stats(d, raw, info["raw_confidence"], gt_canvas)
            extra["fix_seconds"] = info["seconds"]
        else:
            print(f"unknown config {name!r}", file=sys.stderr)
            return 2
        secs = time.perf_counter() - t0
        m = evaluate(frames, gt, INPUTS)
        r = {"heldout_psnr": m["heldout"]["psnr"], "heldout_ssim": m["heldout"]["ssim"],
             "inputs_psnr": m["inputs"]["psnr"], "flicker": m["flicker"]["flicker"], "seconds": secs, **extra}
        results[spec] = r
        rows.append((spec, r))
        print(f"{spec}: {json.dumps({k: round(v, 4) for k, v in r.items()})}", flush=True)

    print()
    print("| config | held-out PSNR | held-out SSIM | inputs PSNR | flicker | pseudo conf | "
          "pseudo PSNR fixed/render (canvas) | conf>=0.5: frac, PSNR fixed/render | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for spec, r in rows:
        ps = (f"{r['conf_mean']:.2f} | {r['psnr_fixed_canvas']:.2f} / {r['psnr_render_canvas']:.2f} | "
              f"{r['frac_conf_hi']:.2f}, {r['psnr_fixed_hi']:.2f} / {r['psnr_render_hi']:.2f}"
              if "conf_mean" in r else "- | - | -")
        print(f"| {spec} | {r['heldout_psnr']:.2f} | {r['heldout_ssim']:.3f} | {r['inputs_psnr']:.2f} | "
              f"{r['flicker']:.2f} | {ps} | {r.get('fix_seconds', r['seconds']):.1f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
