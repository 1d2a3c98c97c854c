#!/usr/bin/env python3
"""Held-out evaluation of the fixers on a real case (CPU or CUDA).

Trains 3DGS on the 4 inputs at the reference poses (once without and once with progressive
updates), renders all 30 frames at the reference poses in the canvas, and scores on the 26
held-out frames (PSNR / SSIM / flicker, as ``shared/bench/score.py``):

    no fixer | post-render (enhance) | progressive | progressive + post-render | DIS-flow peer

All at the same resolution (``--scale`` of the case; ground truth downscaled with INTER_AREA).

usage:
  python tools/gpu/fixer_heldout.py --case /work/shared/cases/gopro_sidewalk --scale 0.5 \\
      --device cpu --steps 1000 --work /tmp/fixer_eval [--fixer reproject] [--reuse]

``--reuse`` loads the trained models / renders cached in ``--work`` (so fixer settings can be
iterated without retraining). Writes ``results.json`` to ``$OUT`` (or ``--work``) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from sparsevid import log
from sparsevid.data.load import load_scene
from sparsevid.data.scene import DEFAULT_KEYFRAMES
from sparsevid.eval.metrics import evaluate
from sparsevid.eval.peers import dis_flow
from sparsevid.fixer.base import RefViews, get_fixer
from sparsevid.fixer.enhance import EnhanceConfig, enhance_frames
from sparsevid.fixer.progressive import InputViews, ProgressiveConfig, ProgressiveUpdater
from sparsevid.gaussians.trainer import Trainer, TrainConfig
from sparsevid.pipeline import make_train_views
from sparsevid.poses.undistort import Undistorter
from sparsevid.render.frames import distort_frames, render_path

KEYS = list(DEFAULT_KEYFRAMES)


def load_case(case: Path, scale: float):
    """(scene with reference poses on the inputs, [30,4,4] reference c2ws, {i: gt uint8 at scale})."""
    ref = load_scene(case / "reference_transforms.json")
    by_idx = {f.index: f.c2w for f in ref.frames + ref.gt_frames}
    scene = load_scene(case, keyframes=KEYS)
    scene = scene.with_poses(ref.camera, np.stack([by_idx[i] for i in KEYS]))
    all_c2w = np.stack([by_idx[i] for i in range(30)])
    w, h = round(scene.camera.width * scale), round(scene.camera.height * scale)
    gt = {f.index: cv2.resize(f.image, (w, h), interpolation=cv2.INTER_AREA) if scale != 1 else f.image
          for f in scene.frames + scene.gt_frames}
    return scene, all_c2w, gt


def input_refs(views, trainer: Trainer) -> RefViews:
    inp = InputViews.from_train_views(views)
    h, w = inp.images.shape[1:3]
    depth = trainer.render(inp.c2ws.float(), inp.Ks.float(), w, h)["depth"].cpu().float()
    return RefViews(inp.images, inp.Ks.float(), inp.c2ws, depth, inp.valid)


def train(scene, und, all_c2w, steps, device, progressive: ProgressiveConfig | None, fixer_name, seed=0):
    views = make_train_views(scene, und)
    tr = Trainer(TrainConfig(steps=steps, seed=seed, quiet=False, log_every=20), views, scene.points, scene.point_colors, device)
    hooks = {}
    if progressive is not None:
        targets = all_c2w[[i for i in range(30) if i not in KEYS]]
        upd = ProgressiveUpdater(get_fixer(fixer_name), InputViews.from_train_views(views), targets,
                                 und.pinhole.K, progressive)
        hooks = upd.hooks(tr.total_steps)
    t0 = time.perf_counter()
    summary = tr.train(hooks=hooks)
    summary["wall_s"] = time.perf_counter() - t0
    return tr, views, summary


def score(frames, gt) -> dict:
    m = evaluate(frames, gt, KEYS)
    return {"psnr": m["heldout"]["psnr"], "ssim": m["heldout"]["ssim"], "psnr_inputs": m["inputs"]["psnr"],
            "flicker": m["flicker"]["flicker"], "change_ratio": m["flicker"]["change_ratio"]}


def eval_model(name, tr, views, und, all_c2w, gt, fixer_name, enhance_cfg, work: Path, reuse: bool, results):
    cache = work / f"{name}_render.npz"
    if reuse and cache.exists():
        z = np.load(cache)
        rgb, depth, alpha = z["rgb"], z["depth"], z["alpha"]
        refs = RefViews(*[torch.from_numpy(z[k]) if z[k].size else None for k in
                          ("ref_images", "ref_Ks", "ref_c2ws", "ref_depth", "ref_valid")])
    else:
        rp = render_path(tr.render, all_c2w, und, keep_canvas=True)
        rgb, depth, alpha = rp.canvas_rgb, rp.canvas_depth, rp.canvas_alpha
        refs = input_refs(views, tr)
        np.savez(cache, rgb=rgb, depth=depth, alpha=alpha, ref_images=refs.images.numpy(),
                 ref_Ks=refs.Ks.numpy(), ref_c2ws=refs.c2ws.numpy(), ref_depth=refs.depth.numpy(),
                 ref_valid=refs.valid.numpy() if refs.valid is not None else np.zeros(0))
    results[name] = score(distort_frames(rgb, und), gt)
    T = len(all_c2w)
    K = torch.from_numpy(np.broadcast_to(und.pinhole.K, (T, 3, 3)).copy()).float()
    valid = torch.from_numpy(und.mask.astype(np.float32))[None, ..., None].expand(T, -1, -1, -1)
    t0 = time.perf_counter()
    res = enhance_frames(get_fixer(fixer_name), torch.from_numpy(rgb), K, torch.from_numpy(all_c2w), refs,
                         depth=torch.from_numpy(depth), alpha=torch.from_numpy(alpha), valid=valid,
                         config=enhance_cfg)
    dt = time.perf_counter() - t0
    frames = distort_frames(res.images.numpy(), und)
    results[f"{name} + post-render"] = score(frames, gt) | {"enhance_s": dt}
    return frames


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", type=Path, default=Path("/work/shared/cases/gopro_sidewalk"))
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--fixer", default="reproject")
    ap.add_argument("--work", type=Path, default=Path("/tmp/fixer_eval"))
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--no-progressive", action="store_true")
    ap.add_argument("--temporal-sigma", type=float, default=EnhanceConfig.temporal_sigma)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    scene, all_c2w, gt = load_case(a.case, a.scale)
    und = Undistorter.for_camera(scene.camera, a.scale, "full")
    device = torch.device("cuda" if (a.device == "auto" and torch.cuda.is_available()) or a.device == "cuda" else "cpu")
    enh = EnhanceConfig(temporal_sigma=a.temporal_sigma)
    results: dict = {}
    w, h = und.size
    log.info(f"case {a.case.name} at {w}x{h} (canvas {und.canvas_size}), device {device}")

    peer = dis_flow({k: gt[k] for k in KEYS}, 30)
    results["DIS-flow peer"] = score(peer, gt)

    runs = [("no fixer", None)] + ([] if a.no_progressive else [("progressive", ProgressiveConfig())])
    for name, prog in runs:
        ck = a.work / f"{name.replace(' ', '_')}.pt"
        if a.reuse and ck.exists():
            tr = Trainer.from_checkpoint(ck, device)
            views = make_train_views(scene, und)
            summ = json.loads((a.work / f"{name.replace(' ', '_')}.json").read_text())
        else:
            tr, views, summ = train(scene, und, all_c2w, a.steps, device, prog, a.fixer)
            tr.save_checkpoint(ck)
            (a.work / f"{name.replace(' ', '_')}.json").write_text(json.dumps(summ))
        log.info(f"{name}: trained {summ['steps']} steps in {summ['wall_s']:.0f}s, {summ['gaussians']} gaussians")
        eval_model(name.replace(" ", "_"), tr, views, und, all_c2w, gt, a.fixer, enh, a.work, a.reuse, results)

    out_dir = Path(os.environ.get("OUT", a.work))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "fixer_heldout.json").write_text(json.dumps(results, indent=1))
    print(f"\n{a.case.name} at {w}x{h}, {device}, steps={a.steps or 'default'}, fixer={a.fixer}")
    print(f"{'config':36s} {'PSNR':>7s} {'SSIM':>6s} {'inputs':>7s} {'flicker':>8s} {'chg':>5s}")
    for k, v in results.items():
        print(f"{k:36s} {v['psnr']:7.2f} {v['ssim']:6.3f} {v['psnr_inputs']:7.2f} {v['flicker']:8.2f} "
              f"{v['change_ratio']:5.2f}")


if __name__ == "__main__":
    sys.exit(main())
