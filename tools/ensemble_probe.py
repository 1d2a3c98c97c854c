"""An ensemble of Gaussian models in the 3D route, probed on captures of the same clip trained with other seeds
(BENCHMARKS.md, issue 12, session 5):

    python tools/fusion_capture.py CASE CAP0
    python tools/fusion_capture.py CASE CAP1 1 1 CAP0/poses/transforms.json   # seed 1, the same poses
    python tools/fusion_capture.py CASE CAP2 1 2 CAP0/poses/transforms.json
    python tools/ensemble_probe.py CASE CAP0 CAP1 CAP2

Each capture's 3D route (the default ReprojectFixer on its renders, its leave-one-out rebuilds) is computed once
and kept in CAPn/ensemble_stash.pkl. Printed: the 3D route's frames alone per model and averaged over the first
2, 3, ... models, then the default fusion on each model's 3D route and on the averaged one.
"""
from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid import log  # noqa: E402
from sparsevid.data.load import load_scene  # noqa: E402
from sparsevid.eval.metrics import evaluate, match_size  # noqa: E402
from sparsevid.fixer.reproject import ReprojectFixer  # noqa: E402
from sparsevid.fuse.route3d import LeaveOneOut3D, path_frames_3d  # noqa: E402
from sparsevid.fuse.stage import fuse_frames  # noqa: E402
from sparsevid.render.frames import to_uint8  # noqa: E402

KEYS = [0, 9, 19, 29]


def route3d(cap: Path) -> dict:
    path = cap / "ensemble_stash.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    C = pickle.loads((cap / "capture2.pkl").read_bytes())
    fixer = ReprojectFixer()
    f3 = path_frames_3d(C["rendered"], C["path"], C["und"], C["refs"], fixer, C["enhance"])
    l3 = LeaveOneOut3D.__new__(LeaveOneOut3D)
    l3.und, l3.refs, l3.fixer, l3.order = C["und"], C["refs"], fixer, C["order"]
    l3._render = lambda k, refs: C["loo_renders"][k]
    d = {"f3": f3, "loo": l3.held_out(KEYS[1:-1]), "positions": C["positions"], "keys": C["keys"], "cfg": C["cfg"]}
    path.write_bytes(pickle.dumps(d))
    return d


def mean_pair(items):
    return (np.mean([i[0] for i in items], 0).astype(np.float32), np.mean([i[1] for i in items], 0).astype(np.float32))


def main() -> int:
    log.set_quiet(True)
    case, caps = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    models = [route3d(c) for c in caps]
    first = models[0]
    h, w = first["keys"][KEYS[0]].shape[:2]
    scene = load_scene(case, keyframes=KEYS)
    gt = {f.index: match_size(f.image, (h, w)) for f in scene.frames + scene.gt_frames}
    T = len(first["positions"])

    def averaged(ms):
        return ([mean_pair([m["f3"][i] for m in ms]) for i in range(T)],
                {k: mean_pair([m["loo"][k] for m in ms]) for k in KEYS[1:-1]})

    def line(name, m, extra=""):
        print(f"{name:36s} PSNR {m['psnr_heldout']:.3f} SSIM {m['ssim_heldout']:.4f} sharpness "
              f"{m['sharpness_heldout']:.3f}{extra}", flush=True)

    sets = [(f"model {j}", [m]) for j, m in enumerate(models)]
    sets += [(f"mean of {n} models", models[:n]) for n in range(2, len(models) + 1)]
    for name, ms in sets:
        f3, _ = averaged(ms)
        line(f"3D route alone, {name}", evaluate([to_uint8(f[0]) for f in f3], gt, KEYS))
    for name, ms in sets:
        f3, loo = averaged(ms)
        t0 = time.time()
        res = fuse_frames(first["positions"], first["keys"], first["cfg"], f3, lambda k, refs, loo=loo: loo[k])
        line(f"fused, {name}", evaluate(res.frames, gt, KEYS),
             f" estimate {res.quality_estimate['psnr_heldout']:.2f} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
