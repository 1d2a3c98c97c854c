"""Per-distance effect of fusion variants (issue 12, session 29): a default CPU run (resumed from RUNS, or made
there) re-fused with each variant; the mean held-out PSNR change against the default, over all held-out frames and
per distance (source frames) to the nearest input.

    python tools/variants_by_distance.py RUNS CASE "NAME=FIELD=VALUE,FIELD=VALUE" ...

e.g. ``"learned off=learned='off'"``: ``FuseConfig`` fields, as ``tools/fusion_variants_cpu.py --variant`` takes them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid import log  # noqa: E402
from sparsevid.configfile import with_settings  # noqa: E402
from sparsevid.data.load import load_scene  # noqa: E402
from sparsevid.eval.metrics import match_size, psnr  # noqa: E402
from sparsevid.pipeline import Route3DOutput, cpu_profile, named_config, run_pipeline  # noqa: E402
from fusion_variants_cpu import parse_variant  # noqa: E402  (this folder: the same NAME=FIELD=VALUE,... syntax)

KEYS = [0, 9, 19, 29]


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    runs, case, variants = Path(sys.argv[1]), Path(sys.argv[2]), [parse_variant(v) for v in sys.argv[3:]]
    log.set_quiet(True)
    cfg = named_config("default", input=case, output=runs / case.name, keyframes=KEYS, device="cpu",
                       overwrite=False, resume=(runs / case.name).exists())
    cfg.write_video, cfg.write_report = False, False
    res = run_pipeline(cfg)
    h, w = res.frames[0].shape[:2]
    scene = load_scene(case, keyframes=KEYS)
    gt = {f.index: match_size(f.image, (h, w)) for f in scene.frames + scene.gt_frames}
    r3 = res.route3d or Route3DOutput(list(range(30)), {k: gt[k] for k in KEYS}, None, None)  # no 3D model
    held = [i for i in range(30) if i not in KEYS]
    dist = {i: min(abs(i - k) for k in KEYS) for i in held}
    base = {i: psnr(res.frames[i], gt[i]) for i in held}
    for name, fields in variants:
        fr = r3.fuse(with_settings(cpu_profile(cfg).fuse, fields), cfg.device)
        change = {i: psnr(fr.frames[i], gt[i]) - base[i] for i in held}
        by = {d: float(np.mean([change[i] for i in held if dist[i] == d])) for d in sorted(set(dist.values()))}
        print(f"{case.name:16s} {name:14s} all {np.mean(list(change.values())):+.3f} | "
              + " ".join(f"d{d}:{x:+.2f}" for d, x in by.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
