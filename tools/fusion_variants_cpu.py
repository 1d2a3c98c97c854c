"""One default CPU run of a case, then its fusion re-run on the run's own 3D route with and without the
distance-scaled route gains, each scored beside DIS flow (BENCHMARKS.md, issue 12, round 3):

    python tools/fusion_variants_cpu.py CASE OUT [SCALE]

CASE holds frame_0000.png ... frame_0029.png (inputs 0, 9, 19, 29); SCALE is the output scale (default 1).
"""
from __future__ import annotations

import dataclasses
import sys
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
    case, out = Path(sys.argv[1]), Path(sys.argv[2])
    scale = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    log.set_quiet(True)
    cfg = named_config("default", input=case, output=out, keyframes=KEYS, device="cpu", overwrite=True)
    cfg.scale, cfg.write_video, cfg.write_report = scale, False, False
    res = run_pipeline(cfg)
    h, w = res.frames[0].shape[:2]
    scene = load_scene(case, keyframes=KEYS)
    gt = {f.index: match_size(f.image, (h, w)) for f in scene.frames + scene.gt_frames}

    def score(frames):
        m = evaluate(frames, gt, KEYS)
        return f"PSNR {m['psnr_heldout']:.3f}  SSIM {m['ssim_heldout']:.4f}  sharpness {m['sharpness_heldout']:.3f}"

    print("DIS flow         ", score(dis_flow({k: gt[k] for k in KEYS}, 30)))
    r3 = res.route3d
    for name, on in (("distance gains  ", True), ("no distance gains", False)):
        fc = dataclasses.replace(cfg.fuse, distance_gains=on)
        fr = fuse_frames(r3.positions, r3.keys, fc, r3.frames,
                         None if r3.loo is None else (lambda k, refs, loo=r3.loo: loo[k]),
                                 leak_free=r3.loo_leak_free, device=cfg.device)
        print(name, score(fr.frames), f" estimate {fr.quality_estimate['psnr_heldout']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
