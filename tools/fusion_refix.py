"""Re-run the post-render fixer and the fusion on a tools/fusion_capture.py capture with other settings, scored on
the held-out frames (BENCHMARKS.md, "Time to video", session 3):

    python tools/fusion_refix.py OUT CASE "NAME:flow_finest_scale=0;fuse.finest_scale=0" "NAME2:" ...

Each argument is a name and ``;``-separated edits: ReprojectFixer options, or ``fuse.<FlowConfig field>``
for the fusion's flow; ``None`` is None. Prints PSNR / SSIM / sharpness, the estimate and the seconds of the
fixer (enhance) and of the fusion with its leave-one-out check.
"""
import sys, pickle, time, dataclasses
from pathlib import Path
import numpy as np
from sparsevid.fixer.reproject import ReprojectFixer, ReprojectConfig
from sparsevid.fuse.route3d import LeaveOneOut3D, path_frames_3d
import sparsevid.fuse.stage as st
from sparsevid.data.load import load_scene
from sparsevid.eval.metrics import evaluate, match_size
from sparsevid import log
log.set_quiet(True)
cap_dir, case = Path(sys.argv[1]), Path(sys.argv[2])
C = pickle.load(open(cap_dir / "capture2.pkl", "rb"))
KEYS = [0, 9, 19, 29]
h, w = C["keys"][0].shape[:2]
scene = load_scene(case, keyframes=KEYS)
gt = {f.index: match_size(f.image, (h, w)) for f in scene.frames + scene.gt_frames}

def run(name, fix_over=None, fuse_cfg=None):
    fixer = ReprojectFixer(**(fix_over or {}))
    t0 = time.time()
    f3 = path_frames_3d(C["rendered"], C["path"], C["und"], C["refs"], fixer, C["enhance"])
    t1 = time.time()
    l3 = LeaveOneOut3D.__new__(LeaveOneOut3D)
    l3.und, l3.refs, l3.fixer, l3.order = C["und"], C["refs"], fixer, C["order"]
    l3._render = lambda k, refs: C["loo_renders"][k]
    res = st.fuse_frames(C["positions"], C["keys"], fuse_cfg or C["cfg"], f3, l3)
    t2 = time.time()
    m = evaluate(res.frames, gt, KEYS)
    est = res.quality_estimate or {}
    print(f"{name:32s} PSNR {m['psnr_heldout']:.3f} SSIM {m['ssim_heldout']:.4f} sharp {m['sharpness_heldout']:.3f}  est {est.get('psnr_heldout')}  enhance {t1-t0:.1f}s fuse+loo {t2-t1:.1f}s", flush=True)

for spec in sys.argv[3:]:
    name, _, kv = spec.partition(":")
    over, fover = {}, {}
    for item in filter(None, kv.split(";")):
        k, v = item.split("=")
        val = None if v == "None" else (int(v) if v.lstrip("-").isdigit() else float(v))
        if k.startswith("fuse."):
            fover[k[5:]] = val
        else:
            over[k] = val
    fc = C["cfg"]
    if fover:
        fc = dataclasses.replace(fc, flow=dataclasses.replace(fc.flow, **fover))
    run(name, over, fc)
