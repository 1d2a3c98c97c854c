"""The 3D route's leave-one-out at the input's own camera, at the camera path's, and both (FuseConfig.loo_at_path),
from one default CPU run per case, each scored (BENCHMARKS.md, issue 12, session 8):

    python tools/loo_at_path_cpu.py OUT.json CASE...

CASE holds frame_0000.png ... frame_0029.png (inputs 0, 9, 19, 29). The run has ``loo_at_path`` on, so it rebuilds
every interior input at both cameras; its fusion is then re-run three ways: the own-camera rebuilds alone (the
default), the path's alone, and both (``route3d_path``: own-camera error plus the path's extra error scaled by
distance). Cases already in OUT.json are skipped (it is written after each case).
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid import log  # noqa: E402
from sparsevid.data.load import load_scene  # noqa: E402
from sparsevid.eval.metrics import evaluate, match_size  # noqa: E402
from sparsevid.eval.peers import dis_flow  # noqa: E402
from sparsevid.fuse.stage import fuse_frames  # noqa: E402
from sparsevid.pipeline import cpu_profile, named_config, run_pipeline  # noqa: E402

KEYS = [0, 9, 19, 29]


def main() -> int:
    out, cases = Path(sys.argv[1]), [Path(c) for c in sys.argv[2:]]
    log.set_quiet(True)
    res = json.loads(out.read_text()) if out.exists() else {"command": " ".join(sys.argv), "cases": {}}
    for case in cases:
        if case.name in res["cases"]:
            continue
        scene = load_scene(case, keyframes=KEYS)
        cfg = named_config("default", input=case, output=Path("/tmp/loo_at_path") / case.name, keyframes=KEYS,
                           device="cpu", overwrite=True)
        cfg.write_video, cfg.write_report = False, False
        cfg.fuse = dataclasses.replace(cfg.fuse, loo_at_path=True)
        t0 = time.perf_counter()
        r = run_pipeline(cfg)
        h, w = r.frames[0].shape[:2]
        gt = {f.index: match_size(f.image, (h, w)) for f in scene.frames + scene.gt_frames}
        d = evaluate(dis_flow({k: gt[k] for k in KEYS}, 30), gt, KEYS)
        rec = {"date": time.strftime("%Y-%m-%d %H:%M"), "seconds": round(time.perf_counter() - t0, 1),
               "stage_seconds": r.stage_seconds,
               "DIS flow": {"psnr": round(d["psnr_heldout"], 3), "ssim": round(d["ssim_heldout"], 4),
                            "sharpness": round(d["sharpness_heldout"], 3)}}
        r3, fc = r.route3d, cpu_profile(cfg).fuse
        for name, own, path in (("own camera (the default)", r3.loo, None), ("path only", r3.loo_path, None),
                                ("both (loo_at_path)", r3.loo, r3.loo_path)):
            fr = fuse_frames(r3.positions, r3.keys, fc, r3.frames, lambda k, refs, lo=own: lo[k],
                             route3d_path=None if path is None else (lambda k, refs, lp=path: lp[k]))
            m = evaluate(fr.frames, gt, KEYS)
            rec[name] = {"psnr": round(m["psnr_heldout"], 3), "ssim": round(m["ssim_heldout"], 4),
                         "sharpness": round(m["sharpness_heldout"], 3),
                         "estimate": fr.quality_estimate["psnr_heldout"],
                         "gain_3d": None if fr.gain_3d is None else round(fr.gain_3d, 3),
                         "routes": fr.quality_estimate["routes"]}
            print(case.name, name, rec[name], flush=True)
        res["cases"][case.name] = rec
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
