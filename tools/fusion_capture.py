"""Run the CPU default on a case and keep what the 3D route's fixer and the fusion start from (renders, input
references, the leave-one-out renders, the fusion's inputs) in OUT/capture2.pkl, for tools/fusion_refix.py:

    python tools/fusion_capture.py CASE OUT [SCALE] [SEED POSES]

SEED (default 0) seeds the run; POSES (a transforms.json, e.g. OUT0/poses/transforms.json of an earlier capture)
gives every capture of an ensemble the same poses and camera path (tools/ensemble_probe.py).
"""
import sys, pickle, time
from pathlib import Path
import sparsevid.fuse.stage as st
import sparsevid.fuse.route3d as r3m
import sparsevid.pipeline as pl
from sparsevid import log
from sparsevid.pipeline import named_config, run_pipeline
case, out, scale = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
seed, poses = (int(sys.argv[4]), sys.argv[5]) if len(sys.argv) > 5 else (0, None)
orig = st.fuse_frames
orig_pf = r3m.path_frames_3d
SAVE = {}
def pf(rendered, path, und, refs, fixer, enhance):
    from sparsevid.render.frames import PathRenderer, render_path
    if isinstance(rendered, PathRenderer):  # the run renders as it goes: keep every canvas for the probes
        rendered = render_path(rendered.render_fn, rendered.c2ws, rendered.und, Ks=rendered.Ks, keep_canvas=True,
                               distort=False)
    SAVE.update(rendered=rendered, path=path, und=und, refs=refs, enhance=enhance)
    return orig_pf(rendered, path, und, refs, fixer, enhance)
def cap(positions, keys, cfg, frames3d=None, route3d=None, **kw):
    order = sorted(keys)
    with open(out / "capture2.pkl", "wb") as f:
        pickle.dump(dict(positions=positions, keys=keys, cfg=cfg, **SAVE), f)
    return orig(positions, keys, cfg, frames3d, route3d, **kw)
orig_ho = r3m.LeaveOneOut3D.held_out
def ho(self, targets):
    SAVE["loo_renders"] = {k: self._render(k, [q for q in self.order if q != k]) for k in targets}
    SAVE["order"] = self.order
    return orig_ho(self, targets)
r3m.LeaveOneOut3D.held_out = ho
for mod in list(sys.modules.values()):
    if getattr(mod, "fuse_frames", None) is orig and mod is not st:
        mod.fuse_frames = cap
    if getattr(mod, "path_frames_3d", None) is orig_pf and mod is not r3m:
        mod.path_frames_3d = pf
log.set_quiet(True)
cfg = named_config("default", input=case, output=out, keyframes=[0, 9, 19, 29], device="cpu", overwrite=True,
                   seed=seed, poses_from=poses)
cfg.scale, cfg.write_video, cfg.write_report = scale, False, False
t0 = time.time(); res = run_pipeline(cfg); print("run", time.time() - t0)
