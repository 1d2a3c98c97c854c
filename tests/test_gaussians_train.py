"""Trainer on a tiny synthetic scene: fits its inputs, resumes exactly, is deterministic, hooks,
PLY round trip, init fallback, and our DefaultStrategy fixes (sync-free stats, opacity reset)."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from sparsevid.data.synthetic import make_scene
from sparsevid.gaussians.model import random_frustum_points
from sparsevid.gaussians.ply import load_ply, save_ply
from sparsevid.gaussians.trainer import (CHECKPOINT_NAME, Trainer, TrainConfig, TrainView, _strategy_class,
                                         views_from_scene)


def _views(width: int, height: int, supersample: int = 4) -> tuple[list[TrainView], object]:
    """The 4 input frames at width x height, rendered at ``supersample`` x and area-averaged:
    like a real sensor, and unlike point sampling, which aliases the corridor's fine texture
    into patterns that disagree between views (no 3D model fits those)."""
    sc = make_scene(width=width * supersample, height=height * supersample)
    K = sc.camera.K.copy()
    K[:2] /= supersample
    views = [TrainView(image=cv2.resize(f.image, (width, height), interpolation=cv2.INTER_AREA),
                       K=K, c2w=f.c2w) for f in sc.frames]
    return views, sc


@pytest.fixture(scope="module")
def small():
    """64x48 views and 400 SfM-like points (for the fitting test)."""
    views, sc = _views(64, 48)
    keep = np.random.default_rng(0).choice(len(sc.points), 400, replace=False)
    return views, sc.points[keep], sc.point_colors[keep]


@pytest.fixture(scope="module")
def tiny():
    """32x24 views and 150 points (for the cheap mechanics tests)."""
    views, sc = _views(32, 24)
    keep = np.random.default_rng(1).choice(len(sc.points), 150, replace=False)
    return views, sc.points[keep], sc.point_colors[keep]


def _cfg(steps: int, **kw) -> TrainConfig:
    """Densify early and often, so that a few dozen steps exercise growth and pruning."""
    cfg = TrainConfig(steps=steps, quiet=True, schedule_ref_steps=0, **kw)
    cfg.densify.refine_start_iter = 4
    cfg.densify.refine_every = 5
    cfg.densify.grow_grad2d = 5e-5
    return cfg


def _psnr(tr: Trainer, views: list[TrainView]) -> float:
    out = tr.render(np.stack([v.c2w for v in views]), np.stack([v.K for v in views]),
                    views[0].width, views[0].height)
    mse = float(((out["rgb"].numpy() - np.stack([v.image for v in views])) ** 2).mean())
    return -10 * np.log10(mse)


def test_fits_input_views(small):
    """300 steps, densification from step 40 every 20 steps (each view seen 5x per window), learning
    rates for colour/scale raised for so short a run (gsplat's are made for 30k steps: its colour
    LR moves the DC term at most ~0.2 in 300 steps)."""
    views, pts, cols = small
    cfg = TrainConfig(steps=300, quiet=True, sh_degree=0, schedule_ref_steps=0, lr_means=1.6e-3,
                      lr_sh0=2e-2, lr_scales=1e-2)
    cfg.densify.refine_start_iter = 40
    cfg.densify.refine_every = 20
    tr = Trainer(cfg, views, pts, cols, device="cpu")
    before = _psnr(tr, views)
    summary = tr.train()
    psnr = _psnr(tr, views)
    assert psnr > 28.0 > before + 10, (before, psnr, summary)
    assert tr.num_gaussians > 4 * len(pts)  # densification did the work
    out = tr.render(np.stack([v.c2w for v in views]), np.stack([v.K for v in views]), 64, 48)
    assert out["depth"].shape == (4, 48, 64, 1) and out["alpha"].mean() > 0.9  # black bg: dark texels may stay thin
    assert [h["step"] for h in tr.history][-1] == 300


def test_resume_keeps_pseudo_views_and_continues_identically(tiny, tmp_path):
    views, pts, cols = tiny
    b = Trainer(_cfg(30), views, pts, cols, device="cpu")
    b.train(num_steps=12)
    b.add_views([TrainView(image=views[0].image, K=views[0].K, c2w=views[0].c2w, weight=0.0,
                           kind="pseudo", round=1)])  # weight 0: same optimisation, more views kept
    ck = tmp_path / "ck.pt"
    b.save_checkpoint(ck)
    c = Trainer.from_checkpoint(ck, device="cpu")
    assert c.step == 12 and len(c.views) == 5 and c.views[-1].kind == "pseudo"
    assert c.num_gaussians == b.num_gaussians
    torch.rand(100)  # global RNG use elsewhere must not matter
    b.train(num_steps=18)
    c.train(num_steps=18)
    assert c.num_gaussians == b.num_gaussians != len(pts)
    for k in b.params:
        assert torch.equal(b.params[k], c.params[k]), k


def test_resume_bitwise_against_uninterrupted(tiny, tmp_path):
    views, pts, cols = tiny
    a = Trainer(_cfg(40), views, pts, cols, device="cpu")
    a.train()
    b = Trainer(_cfg(40), views, pts, cols, device="cpu", run_dir=tmp_path)
    b.train(num_steps=23)  # checkpoint written at the end of train() (run_dir set)
    c = Trainer.from_checkpoint(tmp_path / CHECKPOINT_NAME, device="cpu")
    c.train()
    assert c.step == a.step == 40
    assert c.num_gaussians == a.num_gaussians != len(pts)
    for k in a.params:
        assert torch.allclose(a.params[k], c.params[k], atol=1e-6, rtol=0), k


def test_train_cli_resume_with_steps_rescales_the_schedule(tiny_scene, tmp_path, monkeypatch):
    """``sparsevid train --resume --steps N``: densification and SH schedule of a Trainer built for N steps."""
    from sparsevid.cli import main
    from sparsevid.data.nerfstudio import write_transforms

    ds, out = tmp_path / "ds", tmp_path / "out"
    write_transforms(tiny_scene, ds / "transforms.json", write_images=True)
    assert main(["-q", "train", str(ds), "-o", str(out), "--steps", "10", "--device", "cpu"]) == 0
    first = Trainer.from_checkpoint(out / CHECKPOINT_NAME, device="cpu")
    resumed = []

    class Stop(Exception):
        pass

    def capture(self, *a, **k):
        resumed.append(self)
        raise Stop

    monkeypatch.setattr(Trainer, "train", capture)
    with pytest.raises(Stop):
        main(["train", str(ds), "-o", str(out), "--resume", "--steps", "400", "--device", "cpu"])
    got = resumed[0]
    views = [v for v in got.views if v.kind == "input"]
    want = Trainer(dataclasses.replace(first.cfg, steps=400), views, tiny_scene.points, tiny_scene.point_colors,
                   device="cpu")
    assert got.sh_interval == want.sh_interval != first.sh_interval
    for k in ("refine_start_iter", "refine_stop_iter", "refine_every", "reset_every"):
        assert getattr(got.strategy, k) == getattr(want.strategy, k), k
    assert got.step == 10 and got.total_steps == want.total_steps == 400 and got.cfg.steps == 400


def test_same_seed_same_result_other_seed_differs(tiny):
    views, pts, cols = tiny
    runs = []
    for seed, noise in ((0, False), (0, True), (1, False)):
        tr = Trainer(_cfg(25, seed=seed), views, pts, cols, device="cpu")
        hooks = {10: lambda t: torch.randn(1000)} if noise else None  # unrelated global RNG use
        tr.train(hooks=hooks)
        runs.append(tr)
    a, b, c = runs
    assert a.num_gaussians == b.num_gaussians
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k]), k
    assert not torch.equal(a.params["quats"], c.params["quats"])


def test_hooks_fire_at_steps(tiny):
    views, pts, cols = tiny
    seen = []
    tr = Trainer(_cfg(6), views, pts, cols, device="cpu")
    tr.train(hooks={0: lambda t: seen.append(t.step), 4: lambda t: seen.append(t.step),
                    6: lambda t: seen.append(t.step)})
    assert seen == [0, 4, 6]


def test_ply_round_trip(tiny, tmp_path):
    views, pts, cols = tiny
    tr = Trainer(_cfg(1), views, pts, cols, device="cpu")
    path = save_ply(tmp_path / "point_cloud.ply", dict(tr.params))
    raw = path.read_bytes()
    head = raw[:raw.index(b"end_header\n")].decode("ascii")
    assert "format binary_little_endian 1.0" in head and "property float f_rest_44" in head
    assert f"element vertex {len(pts)}" in head
    back = load_ply(path)
    for k, v in tr.params.items():
        assert torch.equal(back[k], v.detach()), k


def test_random_init_fallback(tiny):
    views, _, _ = tiny
    pts, cols = random_frustum_points(views, 500, np.random.default_rng(0))
    assert pts.shape == (500, 3) and cols.dtype == np.uint8
    for v in views:
        w2c = np.linalg.inv(v.c2w)
        z = (pts @ w2c[:3, :3].T + w2c[:3, 3])[:, 2]
        assert (z > 0).mean() > 0.2  # a share of the points sits in front of each camera
    cfg = _cfg(5)
    cfg.init.random_points = 2000
    tr = Trainer(cfg, views, None, None, device="cpu")
    assert tr.num_gaussians == 2000
    tr.train()
    assert torch.isfinite(tr.params["means"]).all()


def test_schedule_compresses_for_short_runs():
    cfg = TrainConfig()
    dens, sh = cfg.scaled(500)
    assert (dens.refine_start_iter, dens.refine_every, sh) == (125, 25, 250)
    dens, sh = cfg.scaled(30000)  # longer than the reference: unchanged (vanilla 3DGS)
    assert (dens.refine_start_iter, dens.refine_every, dens.reset_every, sh) == (500, 100, 3000, 1000)
    assert TrainConfig().resolved_steps(torch.device("cpu")) < TrainConfig().resolved_steps(torch.device("cuda"))


def test_strategy_stats_match_gsplat_and_reset_fires():
    from gsplat.strategy import DefaultStrategy

    g = torch.Generator().manual_seed(0)
    N, C = 50, 2
    params = {k: torch.nn.Parameter(v) for k, v in {
        "means": torch.randn(N, 3, generator=g), "quats": torch.randn(N, 4, generator=g),
        "scales": torch.randn(N, 3, generator=g) - 3, "opacities": torch.randn(N, generator=g)}.items()}
    means2d = torch.randn(C, N, 2, generator=g, requires_grad=True)
    (means2d * torch.randn(C, N, 2, generator=g)).sum().backward()
    radii = (torch.rand(C, N, 2, generator=g) * 3).int()
    info = {"means2d": means2d, "radii": radii, "width": 40, "height": 30, "n_cameras": C,
            "gaussian_ids": None}
    ours, ref = _strategy_class()(), DefaultStrategy()
    s1, s2 = ours.initialize_state(), ref.initialize_state()
    for _ in range(2):
        ours._update_state(params, s1, info)
        ref._update_state(params, s2, info)
    assert torch.allclose(s1["grad2d"], s2["grad2d"], atol=1e-6) and torch.equal(s1["count"], s2["count"])

    opts = {k: torch.optim.Adam([{"params": p, "lr": 1e-3, "name": k}]) for k, p in params.items()}
    strat = _strategy_class()(refine_start_iter=10**6, reset_every=7)
    state = strat.initialize_state()
    with torch.no_grad():
        params["opacities"].fill_(3.0)
    strat.step_post_backward(params, opts, state, 6, info)
    assert torch.all(params["opacities"] == 3.0)
    strat.step_post_backward(params, opts, state, 7, info)  # gsplat 1.5.3 never resets here
    assert torch.allclose(torch.sigmoid(params["opacities"]), torch.tensor(0.01), atol=1e-6)


def test_views_from_scene_full_canvas():
    sc = make_scene(width=40, height=30, model="OPENCV")
    views = views_from_scene(sc, mode="full")
    assert len(views) == 4 and views[0].mask.shape[:2] == views[0].image.shape[:2]
    assert views[0].width >= 40 and 0 < views[0].mask.mean() <= 1


def test_ssim_loss_matches_direct_2d_window():
    """The separable SSIM equals SSIM with the full 11x11 Gaussian window (zero padding), computed
    directly in float64; identical images score 1 and the masked loss ignores masked pixels."""
    import torch.nn.functional as F

    from sparsevid.gaussians.losses import photometric_loss, ssim_map

    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 23, 31, 3, generator=g, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(a.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    x = torch.arange(11, dtype=torch.float64) - 5
    w1 = torch.exp(-x * x / (2 * 1.5 ** 2))
    w1 = w1 / w1.sum()
    w2 = (w1[:, None] * w1[None, :])[None, None]

    def blur(t):  # [B, H, W, 3] -> [B, 3, H, W], each channel on its own
        t = t.permute(0, 3, 1, 2)
        return F.conv2d(t.reshape(-1, 1, *t.shape[2:]), w2, padding=5).reshape(t.shape)

    mx, my = blur(a), blur(b)
    vx, vy, cxy = blur(a * a) - mx ** 2, blur(b * b) - my ** 2, blur(a * b) - mx * my
    ref = ((2 * mx * my + 1e-4) * (2 * cxy + 9e-4)) / ((mx ** 2 + my ** 2 + 1e-4) * (vx + vy + 9e-4))
    ours = ssim_map(a, b)
    assert ours.shape == (2, 23, 31, 1)
    assert torch.allclose(ours[..., 0], ref.mean(1), atol=1e-12)
    assert torch.allclose(ssim_map(a, a), torch.ones_like(ours))
    mask = torch.zeros(2, 23, 31, 1, dtype=torch.float64)
    mask[:, :, :10] = 1
    c = b.clone()
    c[:, :, 20:] = 0.5  # only pixels far (> window) from the valid region change
    l1, _, _ = photometric_loss(a, b, mask)
    l2, _, _ = photometric_loss(a, c, mask)
    assert float(l1) == pytest.approx(float(l2), abs=1e-12)


def test_blur_taps_equals_conv_blur_and_loss_paths_agree():
    """The compile-friendly tap filter equals the grouped-conv filter, so the CUDA (compiled) and
    CPU losses are the same function; on the CPU the trainer uses the eager loss."""
    from sparsevid.gaussians.losses import (_taps_loss, gaussian_blur, gaussian_blur_taps, make_loss_fn,
                                            photometric_loss)

    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 15, 19, 26, generator=g, dtype=torch.float64)
    assert torch.allclose(gaussian_blur_taps(x), gaussian_blur(x), atol=1e-13)
    r = torch.rand(1, 17, 21, 3, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.rand(1, 17, 21, 3, generator=g, dtype=torch.float64)
    m = (torch.rand(1, 17, 21, 1, generator=g) > 0.3).double()
    a = photometric_loss(r, t, m, 0.7)
    (ga,) = torch.autograd.grad(a[0], r)
    b = _taps_loss(r, t, m, 0.7)
    (gb,) = torch.autograd.grad(b[0], r)
    assert torch.allclose(a[0], b[0], atol=1e-13) and torch.allclose(ga, gb, atol=1e-13)
    assert make_loss_fn(torch.device("cpu")) is photometric_loss


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (checked on the H100: tools/gpu)")
def test_compiled_cuda_loss_matches_eager():
    from sparsevid.gaussians.losses import make_loss_fn, photometric_loss

    g = torch.Generator(device="cuda").manual_seed(2)
    r = torch.rand(1, 120, 200, 3, generator=g, device="cuda", requires_grad=True)
    t = torch.rand(1, 120, 200, 3, generator=g, device="cuda")
    m = (torch.rand(1, 120, 200, 1, generator=g, device="cuda") > 0.2).float()
    w = torch.tensor([0.6], device="cuda")
    fn = make_loss_fn(torch.device("cuda"))
    a = photometric_loss(r, t, m, w)
    (ga,) = torch.autograd.grad(a[0], r)
    b = fn(r, t, m, w, 0.2)
    assert not getattr(fn, "failed", False)
    (gb,) = torch.autograd.grad(b[0], r)
    assert torch.allclose(a[0], b[0], rtol=1e-5, atol=1e-6)
    assert torch.allclose(a[2], b[2], rtol=1e-5, atol=1e-7)
    assert torch.allclose(ga, gb, rtol=1e-4, atol=1e-8)


def test_downscaled_view_keeps_the_field_of_view(small):
    """A view at half resolution (coarse-to-fine training): area-averaged image and mask, and a K
    that puts every 3D point at half its pixel coordinates (continuous coordinates, pixel centres at
    +0.5, as the rasterizers use), so the canvas covers the same field of view."""
    from sparsevid.gaussians.views import downscaled

    views, _, _ = small
    v = dataclasses.replace(views[1], mask=np.random.default_rng(0).random((48, 64, 1)).astype(np.float32))
    half = downscaled(v, 0.5)
    assert (half.width, half.height) == (32, 24) and downscaled(v, 1.0) is v
    assert np.allclose(half.image, cv2.resize(v.image, (32, 24), interpolation=cv2.INTER_AREA))
    assert np.allclose(half.mask[..., 0], cv2.resize(v.mask[..., 0], (32, 24), interpolation=cv2.INTER_AREA))
    pts = np.random.default_rng(1).normal(size=(20, 3)) + np.array([0, 0, 5.0])
    full_px = (v.K @ pts.T).T
    half_px = (half.K @ pts.T).T
    assert np.allclose(half_px[:, :2] / half_px[:, 2:], 0.5 * full_px[:, :2] / full_px[:, 2:])
    odd = downscaled(dataclasses.replace(v, image=v.image[:47, :63], mask=v.mask[:47, :63]), 0.5)
    assert (odd.width, odd.height) == (32, 24)  # rounded size, K scaled by the exact per-axis ratio
    assert np.isclose(odd.K[0, 0], v.K[0, 0] * 32 / 63) and np.isclose(odd.K[1, 1], v.K[1, 1] * 24 / 47)


def test_coarse_to_fine_trains_the_first_steps_at_the_coarse_scale(small):
    views, pts, cols = small
    fast = dict(sh_degree=0, lr_means=1.6e-3, lr_sh0=2e-2, lr_scales=1e-2)  # a short run that learns
    tr = Trainer(_cfg(40, coarse_fraction=0.5, **fast), views, pts, cols, device="cpu")
    before = _psnr(tr, views)
    assert [tr.view_scale(s) for s in (0, 19, 20, 39)] == [0.5, 0.5, 1.0, 1.0]
    sizes = []
    real = tr._rasterize
    tr._rasterize = lambda vm, K, w, h, *a, **k: (sizes.append((w, h)), real(vm, K, w, h, *a, **k))[1]
    tr.train()
    assert sizes[:20] == [(32, 24)] * 20 and sizes[20:] == [(64, 48)] * 20
    plain = Trainer(_cfg(40, **fast), views, pts, cols, device="cpu")
    assert plain.view_scale(0) == 1.0
    plain.train()
    coarse, fine = _psnr(tr, views), _psnr(plain, views)
    assert coarse > before + 1.0 and coarse > fine - 1.0, (before, coarse, fine)


def test_twist_exp_is_the_rigid_motion_of_its_twist():
    from scipy.spatial.transform import Rotation

    from sparsevid.gaussians.trainer import twist_exp

    w = np.array([0.01, -0.02, 0.03])
    E = twist_exp(torch.tensor([*w, 0.0, 0.0, 0.0], dtype=torch.float64)).numpy()
    assert np.allclose(E[:3, :3], Rotation.from_rotvec(w).as_matrix(), atol=1e-12) and np.allclose(E[:3, 3], 0)
    E = twist_exp(torch.tensor([0.0, 0.0, 0.0, 0.1, -0.2, 0.3], dtype=torch.float64), translation_unit=2.0).numpy()
    assert np.allclose(E[:3, :3], np.eye(3)) and np.allclose(E[:3, 3], [0.2, -0.4, 0.6])
    assert np.allclose(E[3], [0, 0, 0, 1])


def test_pose_refinement_pulls_a_misplaced_camera_back(small):
    """One input camera turned by 1 deg: trained with camera refinement (TrainConfig.pose_lr), its refined pose is
    much nearer the truth; the first camera stays where it was; without refinement nothing moves."""
    from scipy.spatial.transform import Rotation

    from sparsevid.geometry import rotation_angle_deg

    views, pts, cols = small
    turn = np.eye(4)
    turn[:3, :3] = Rotation.from_rotvec([0.0, np.radians(1.0), 0.0]).as_matrix()
    bad = list(views)
    bad[2] = dataclasses.replace(views[2], c2w=views[2].c2w @ turn)
    truth = np.stack([v.c2w for v in views])
    errs = {}
    for lr in (0.0, 1e-3):
        cfg = TrainConfig(steps=300, quiet=True, sh_degree=0, schedule_ref_steps=0, lr_means=1.6e-3,
                          lr_sh0=2e-2, lr_scales=1e-2, pose_lr=lr)
        cfg.densify.refine_start_iter = 40
        cfg.densify.refine_every = 20
        tr = Trainer(cfg, bad, pts, cols, device="cpu")
        tr.train()
        errs[lr] = rotation_angle_deg(tr.refined_c2ws(), truth)
        assert np.array_equal(tr.refined_c2ws()[0], bad[0].c2w)
    assert np.allclose(errs[0.0], [0, 0, 1, 0], atol=1e-6)
    assert errs[1e-3][2] < 0.4 and errs[1e-3].max() < 0.5 and errs[1e-3].mean() < 0.2, errs


def test_pose_refinement_resumes_exactly(tiny, tmp_path):
    views, pts, cols = tiny
    a = Trainer(_cfg(30, pose_lr=1e-3), views, pts, cols, device="cpu")
    a.train()
    b = Trainer(_cfg(30, pose_lr=1e-3), views, pts, cols, device="cpu", run_dir=tmp_path)
    b.train(num_steps=17)
    c = Trainer.from_checkpoint(tmp_path / CHECKPOINT_NAME, device="cpu")
    assert torch.equal(c.pose_deltas, b.pose_deltas) and c.pose_deltas.abs().sum() > 0
    c.train()
    assert np.allclose(a.refined_c2ws(), c.refined_c2ws(), atol=1e-6)
