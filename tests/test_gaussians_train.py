"""Trainer on a tiny synthetic scene: fits its inputs, resumes exactly, PLY round trip, init fallback."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsevid.data.synthetic import make_scene
from sparsevid.gaussians.model import random_frustum_points
from sparsevid.gaussians.ply import load_ply, save_ply
from sparsevid.gaussians.trainer import Trainer, TrainConfig, TrainView


@pytest.fixture(scope="module")
def small():
    sc = make_scene(width=64, height=48)
    views = [TrainView(image=f.image, K=sc.camera.K, c2w=f.c2w) for f in sc.frames]
    keep = np.random.default_rng(0).choice(len(sc.points), 400, replace=False)
    return views, sc.points[keep], sc.point_colors[keep]


def _cfg(steps: int, **kw) -> TrainConfig:
    cfg = TrainConfig(steps=steps, quiet=True, **kw)
    cfg.densify.refine_start_iter = 20
    cfg.densify.refine_every = 20
    return cfg


def test_fits_input_views(small):
    views, pts, cols = small
    tr = Trainer(_cfg(250, lr_means=1.6e-3, sh_degree=0), views, pts, cols, device="cpu")
    summary = tr.train()
    out = tr.render(np.stack([v.c2w for v in views]), np.stack([v.K for v in views]), 64, 48)
    mse = float(((out["rgb"].numpy() - np.stack([v.image for v in views])) ** 2).mean())
    psnr = -10 * np.log10(mse)
    assert psnr > 28.0, (psnr, summary)
    assert out["depth"].shape == (4, 48, 64, 1) and out["alpha"].min() > 0.5


def test_resume_keeps_pseudo_views_and_continues_identically(small, tmp_path):
    views, pts, cols = small
    b = Trainer(_cfg(30), views, pts, cols, device="cpu")
    b.train(num_steps=12)
    b.add_views([TrainView(image=views[0].image, K=views[0].K, c2w=views[0].c2w, weight=0.0,
                           kind="pseudo", round=1)])  # weight 0: same optimisation, more views kept
    ck = tmp_path / "ck.pt"
    b.save_checkpoint(ck)
    c = Trainer.from_checkpoint(ck, device="cpu")
    assert c.step == 12 and len(c.views) == 5 and c.views[-1].kind == "pseudo"
    assert c.num_gaussians == b.num_gaussians
    # b and c continue identically
    b.train(num_steps=18)
    c.train(num_steps=18)
    for k in b.params:
        assert torch.equal(b.params[k], c.params[k]), k


def test_resume_bitwise_against_uninterrupted(small, tmp_path):
    views, pts, cols = small
    a = Trainer(_cfg(40), views, pts, cols, device="cpu")
    a.train()
    b = Trainer(_cfg(40), views, pts, cols, device="cpu", run_dir=tmp_path)
    b.train(num_steps=25)
    c = Trainer.from_checkpoint(tmp_path / "checkpoint.pt", device="cpu")
    c.train()
    assert c.step == a.step == 40
    assert c.num_gaussians == a.num_gaussians
    for k in a.params:
        assert torch.allclose(a.params[k], c.params[k], atol=1e-6, rtol=0), k


def test_hooks_fire_at_steps(small):
    views, pts, cols = small
    seen = []
    tr = Trainer(_cfg(6), views, pts, cols, device="cpu")
    tr.train(hooks={0: lambda t: seen.append(t.step), 4: lambda t: seen.append(t.step),
                    6: lambda t: seen.append(t.step)})
    assert seen == [0, 4, 6]


def test_ply_round_trip(small, tmp_path):
    views, pts, cols = small
    tr = Trainer(_cfg(1), views, pts, cols, device="cpu")
    path = save_ply(tmp_path / "point_cloud.ply", dict(tr.params))
    head = path.read_bytes()[:400].decode("ascii", "replace")
    assert "format binary_little_endian 1.0" in head and "property float f_rest_44" in head
    back = load_ply(path)
    for k, v in tr.params.items():
        assert torch.equal(back[k], v.detach()), k


def test_random_init_fallback(small):
    views, _, _ = small
    pts, cols = random_frustum_points(views, 500, np.random.default_rng(0))
    assert pts.shape == (500, 3) and cols.dtype == np.uint8
    for v in views[:1]:
        w2c = np.linalg.inv(v.c2w)
        z = (pts @ w2c[:3, :3].T + w2c[:3, 3])[:, 2]
        assert (z > 0).mean() > 0.2  # a share of the points sits in front of each camera
    tr = Trainer(_cfg(5), views, None, None, device="cpu")
    assert tr.num_gaussians == tr.cfg.init.random_points
    tr.train()
