"""How far per-region choice among the fusion's candidates could go: every in-between frame of a
tools/fusion_capture.py capture, scored per candidate (the 2D route's two flow warps, the 3D route's guided
warps and its fixed render), per route, and for two oracles that know the real frame: the best candidate per
pixel, and per region (its squared error blurred over 8 px). Prints PSNR per frame and over all frames, and the
mean sharpness of each (BENCHMARKS.md, "Quality (issue 12): where the session-3 default stands"):

    python tools/fusion_oracle.py CAP CASE
"""
import pickle
import sys
from pathlib import Path

import numpy as np
from sparsevid.fixer.reproject import ReprojectFixer
from sparsevid.fuse.route3d import path_frames_3d
import sparsevid.fuse.fusion as fu
from sparsevid.fuse.fusion import bracket, flow_candidates, route3d_candidates, fuse, PairFlows, to_float
from sparsevid.eval.metrics import psnr, match_size, laplacian_variance
from sparsevid.render.frames import to_uint8
from sparsevid.data.load import load_scene
cap_dir, case = Path(sys.argv[1]), Path(sys.argv[2])
C = pickle.load(open(cap_dir / "capture2.pkl", "rb")); cfg = C["cfg"]
C["frames3d"] = path_frames_3d(C["rendered"], C["path"], C["und"], C["refs"], ReprojectFixer(), C["enhance"])
KEYS=[0,9,19,29]; h,w = C["keys"][0].shape[:2]
scene = load_scene(case, keyframes=KEYS)
gt = {f.index: match_size(f.image, (h, w)) for f in scene.frames + scene.gt_frames}
ku = {k: to_uint8(to_float(v)) for k,v in C["keys"].items()}; fk = {k: to_float(v) for k,v in ku.items()}
flows = PairFlows(ku, cfg.flow)
rows, SH = [], []
for i,pos in enumerate(C["positions"]):
    br = bracket(pos, KEYS)
    if br.at_key: continue
    g = gt[i]; gf = g.astype(np.float32)/255
    c2 = flow_candidates(fk[br.k0], fk[br.k1], br.t, flows(br.k0, br.k1), cfg)
    img3, w3 = C["frames3d"][i]
    c3 = route3d_candidates(img3, w3, fk[br.k0], fk[br.k1], br.t, cfg)
    r = {}
    r["2d"] = fuse(c2, None, 1.0, cfg)
    r["3d"] = fuse(c3, None, 1.0, cfg)
    r["render"] = img3
    r["g_a"], r["g_b"] = c3[0].image, c3[1].image
    r["f_a"], r["f_b"] = c2[0].image, c2[1].image
    allc = c2 + c3
    err = np.stack([np.mean((c.image - gf)**2, -1) for c in allc])
    best = np.take_along_axis(np.stack([c.image for c in allc]), err.argmin(0)[None,...,None], 0)[0]
    r["oracle_px"] = best
    from sparsevid.imaging import blur
    errb = np.stack([blur(e, 8) for e in err])
    r["oracle_reg"] = np.take_along_axis(np.stack([c.image for c in allc]), errb.argmin(0)[None,...,None], 0)[0]
    ps = {k: psnr(to_uint8(v), g) for k,v in r.items()}
    rows.append((i, br.distance(), ps))
    SH.append({k: laplacian_variance(to_uint8(v)) / laplacian_variance(g) for k, v in r.items()})
keys = list(rows[0][2])
print("frame dist " + " ".join(f"{k:>9s}" for k in keys))
for i,d,ps in rows: print(f"{i:5d} {d:4.1f} " + " ".join(f"{ps[k]:9.2f}" for k in keys))
def mp(k): return 10*np.log10(255**2/np.mean([255**2/10**(ps[k]/10) for _,_,ps in rows]))
print("mean(mse)  " + " ".join(f"{mp(k):9.2f}" for k in keys))
print("sharpness  " + " ".join(f"{np.mean([s[k] for s in SH]):9.2f}" for k in keys))
