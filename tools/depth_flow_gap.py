"""Diagnostic (issue 12, session 20): how far a run's Gaussians' geometry is from the optical flow between
neighbouring inputs.

    python tools/depth_flow_gap.py RUN...

RUN is a run folder with ``train/checkpoint.safetensors``. For each pair of neighbouring input views (on the
training canvas), both ways: the model's expected depth is rendered, turned into the rigid flow it implies
(:func:`sparsevid.fuse.rigid.rigid_flow`), and compared with DIS flow (:func:`sparsevid.fuse.flow2d.pair_flow`)
where that flow is forward-backward consistent (error < 0.5 px) and the render is opaque. Printed: the share of
such pixels, the flow's median length, the gap (endpoint error) median and 90th percentile, and the flow's distance
from its epipolar line (what no depth explains: the poses, or a moving scene).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.fuse.flow2d import FlowConfig, pair_flow  # noqa: E402
from sparsevid.fuse.rigid import epipolar_segment, rigid_flow, segment_distance  # noqa: E402
from sparsevid.gaussians.checkpoint import restore_trainer  # noqa: E402
from sparsevid.gaussians.trainer import Trainer  # noqa: E402
from sparsevid.render.frames import to_uint8  # noqa: E402


def main() -> int:
    for run in sys.argv[1:]:
        tr = restore_trainer(Trainer, Path(run) / "train", device="cpu")
        vs = [v for v in tr.views if v.kind == "input"]
        h, w = vs[0].image.shape[:2]
        out = tr.render(np.stack([v.c2w for v in vs]), np.stack([v.K for v in vs]), w, h)
        depth, alpha = out["depth"][..., 0].cpu().numpy(), out["alpha"][..., 0].cpu().numpy()
        print(f"{run}: {len(vs)} input views on a {w}x{h} canvas")
        for i in range(len(vs) - 1):
            pf = pair_flow(to_uint8(vs[i].image), to_uint8(vs[i + 1].image), FlowConfig())
            for a, b, fl, err in ((i, i + 1, pf.fab, pf.err_ab), (i + 1, i, pf.fba, pf.err_ba)):
                va, vb = vs[a], vs[b]
                rf = rigid_flow(depth[a], va.K, va.c2w, vb.c2w)
                line = epipolar_segment(depth[a], va.K, va.c2w, vb.c2w, None, 1e3)
                ok = (err < 0.5) & np.isfinite(rf).all(-1) & (va.mask[..., 0] > 0.5) & (alpha[a] > 0.9)
                gap = np.linalg.norm(fl - rf, axis=-1)[ok]
                off = segment_distance(fl, *line)[ok]
                print(f"  {a}->{b}: consistent {ok.mean():.2f}, |flow| median {np.median(np.linalg.norm(fl, axis=-1)[ok]):.1f} px, "
                      f"gap median {np.median(gap):.2f} p90 {np.percentile(gap, 90):.2f} px, "
                      f"off the epipolar line median {np.nanmedian(off):.2f} p90 {np.nanpercentile(off, 90):.2f} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
