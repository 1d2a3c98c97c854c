"""One default CPU run per case, then its fusion re-run on the run's own 3D route with other fusion
settings, each scored beside DIS flow (BENCHMARKS.md, issue 12):

    python tools/fusion_variants_cpu.py CASE... --json OUT.json [--scale S] \
        [--variant NAME="FIELD=VALUE,..."]...

CASE holds frame_0000.png ... frame_0029.png (inputs 0, 9, 19, 29); S is the output scale (default 1). A variant
edits the run's ``FuseConfig`` (Python literals: ``--variant "4 passes=learned_passes=4"``,
``--variant "2D alone=mode='2d'"``, nested settings as ``flow.FIELD`` or ``fixed.FIELD``: ``--variant "linear=flow.motion='linear'"``);
without any, the distance-gains pair of round 3.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid import log  # noqa: E402
from sparsevid.configfile import with_settings  # noqa: E402
from sparsevid.data.load import load_scene  # noqa: E402
from sparsevid.eval.metrics import evaluate, match_size  # noqa: E402
from sparsevid.eval.peers import dis_flow  # noqa: E402
from sparsevid.pipeline import Route3DOutput, cpu_profile, named_config, run_pipeline  # noqa: E402

KEYS = [0, 9, 19, 29]
DEFAULT_VARIANTS = ["distance gains=distance_gains=True", "no distance gains=distance_gains=False"]


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, edits = text.partition("=")
    fields = {}
    for item in filter(None, (e.strip() for e in edits.split(","))):
        key, _, value = item.partition("=")
        fields[key.strip()] = ast.literal_eval(value.strip())
    return name, fields


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--runs", type=Path, default=Path("/tmp/fusion_variants"))
    ap.add_argument("--resume", action="store_true",
                    help="continue the default runs already in --runs (poses and training kept) instead of redoing them")
    args = ap.parse_args()
    log.set_quiet(True)
    variants = [parse_variant(v) for v in (args.variant or DEFAULT_VARIANTS)]
    results = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"), "cases": {}}
    for case in args.cases:
        cfg = named_config("default", input=case, output=args.runs / case.name, keyframes=KEYS, device="cpu",
                           overwrite=not (args.resume and (args.runs / case.name).exists()),
                           resume=args.resume and (args.runs / case.name).exists())
        cfg.scale, cfg.write_video, cfg.write_report = args.scale, False, False
        t0 = time.perf_counter()
        res = run_pipeline(cfg)
        h, w = res.frames[0].shape[:2]
        scene = load_scene(case, keyframes=KEYS)
        gt = {f.index: match_size(f.image, (h, w)) for f in scene.frames + scene.gt_frames}

        def score(frames) -> dict:
            m = evaluate(frames, gt, KEYS)
            return {"psnr": round(m["psnr_heldout"], 3), "ssim": round(m["ssim_heldout"], 4),
                    "sharpness": round(m["sharpness_heldout"], 3), "pulse": round(m["pulse_ratio"], 3),
                    "flicker": round(m["flicker"]["flicker"], 3)}

        rec = {"DIS flow": score(dis_flow({k: gt[k] for k in KEYS}, 30)),
               "default (CPU profile)": {**score(res.frames), "seconds": round(time.perf_counter() - t0, 1),
                                         "stage_seconds": res.stage_seconds,
                                         "estimate": res.quality_estimate["psnr_heldout"]}}
        r3 = res.route3d or Route3DOutput(list(range(30)), {k: gt[k] for k in KEYS}, None, None)  # no 3D model
        for name, fields in variants:
            base = cpu_profile(cfg).fuse  # the fusion settings the default run used (e.g. the CPU's learned passes)
            fc = with_settings(base, fields)
            t0 = time.perf_counter()
            fr = r3.fuse(fc, cfg.device)
            rec[name] = {**score(fr.frames), "fusing_s": round(time.perf_counter() - t0, 1),
                         "estimate": fr.quality_estimate["psnr_heldout"], "routes_off": fr.loo.routes_off}
            print(case.name, name, rec[name], flush=True)
        results["cases"][case.name] = rec
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
