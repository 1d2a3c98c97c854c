"""Fixers: interface/registry, exact reprojection geometry, progressive schedule, enhancement."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsevid.data import synthetic
from sparsevid.errors import SparsevidError
from sparsevid.fixer import FixerConfig, FixRequest, FixResult, RefViews, available_fixers, build_fixer, get_fixer
from sparsevid.fixer.base import DEFAULT_FIXER, Fixer, register_fixer
from sparsevid.fixer.enhance import EnhanceConfig, enhance_frames, enhance_stream, smooth_confidence
from sparsevid.fixer.progressive import (ProgressiveConfig, default_fix_steps, interpolate_c2w,
                                         median_neighbor_spacing, nearest_cameras, plan_pseudo_cameras, rotation_angle_deg)
from sparsevid.fixer.reproject import (backward_warp_coords, camera_distances, choose_references, sample_image,
                                      warp_coords_np)

W, H = 160, 96
INPUTS = [0, 9, 19, 29]


@pytest.fixture(scope="module")
def corridor():
    """Exact synthetic renders (image [H,W,3] float32, depth [H,W,1]) of all 30 frames."""
    cam = synthetic.make_scene(width=W, height=H, num_frames=30).camera
    poses = synthetic.trajectory(30)
    ims, deps = [], []
    for c2w in poses:
        im, d = synthetic.render(cam, c2w)
        ims.append(torch.tensor(im / 255.0, dtype=torch.float32))
        deps.append(torch.tensor(d, dtype=torch.float32)[..., None])
    K = torch.tensor(cam.K, dtype=torch.float32)
    return {"K": K, "c2ws": torch.tensor(poses), "images": torch.stack(ims), "depth": torch.stack(deps)}


def _refs(c, with_depth=True):
    idx = torch.tensor(INPUTS)
    return RefViews(c["images"][idx], c["K"].expand(4, 3, 3), c["c2ws"][idx],
                    c["depth"][idx] if with_depth else None)


def _blur(x, k=5):
    return torch.nn.functional.avg_pool2d(x.permute(0, 3, 1, 2), k, 1, k // 2,
                                          count_include_pad=False).permute(0, 2, 3, 1)


# ---- interface -----------------------------------------------------------------------------
def test_registry_and_identity(corridor):
    assert {"none", "reproject", "difix"} <= set(available_fixers())
    assert FixerConfig().name == DEFAULT_FIXER == "reproject"
    with pytest.raises(SparsevidError):
        get_fixer("no-such-fixer")
    c = corridor
    alpha = torch.rand(2, H, W, 1)
    valid = torch.ones(2, H, W, 1)
    valid[:, :, :10] = 0
    req = FixRequest(c["images"][[3, 4]], c["K"].expand(2, 3, 3), c["c2ws"][[3, 4]], _refs(c), alpha=alpha,
                     valid=valid)
    res = get_fixer("none").fix(req)
    assert torch.equal(res.images, req.renders)
    assert torch.allclose(res.confidence, alpha * valid)

    @register_fixer("test-double")
    class Double(Fixer):
        def __init__(self, gain=1.0):
            self.gain = gain

        def fix(self, request):
            return FixResult((request.renders * self.gain).clamp(0, 1), torch.ones_like(request.renders[..., :1]))

    f = get_fixer("test-double", gain=0.5)
    assert f.name == "test-double" and f.gain == 0.5
    assert isinstance(build_fixer(FixerConfig(name="none")), Fixer)


def test_request_validates_shapes(corridor):
    c = corridor
    with pytest.raises(ValueError):
        FixRequest(c["images"][:2], c["K"].expand(3, 3, 3), c["c2ws"][:2], _refs(c))
    with pytest.raises(ValueError):
        FixRequest(c["images"][:2], c["K"].expand(2, 3, 3), c["c2ws"][:2], _refs(c), depth=c["depth"][:1])


# ---- exact geometry ------------------------------------------------------------------------
def test_backward_warp_is_exact_with_true_depth(corridor):
    """Warping a reference through the true novel depth lands on the same 3D point: the projected
    depth equals the reference's own depth there, and the colours match the true novel image."""
    c = corridor
    novel, ref = 13, 9
    uv, z = backward_warp_coords(c["depth"][[novel]], c["K"][None], c["c2ws"][[novel]], c["K"][None],
                                 c["c2ws"][[ref]])
    ok = (uv[..., 0] > 2) & (uv[..., 0] < W - 2) & (uv[..., 1] > 2) & (uv[..., 1] < H - 2)
    assert ok.float().mean() > 0.8
    d_ref = sample_image(c["depth"][[ref]], uv)
    rel = ((z - d_ref).abs() / d_ref)[ok]
    assert rel.median() < 1e-3
    warped = sample_image(c["images"][[ref]], uv)
    err = (warped - c["images"][[novel]]).abs()[ok.expand(-1, -1, -1)].mean()
    ident = (c["images"][[ref]] - c["images"][[novel]]).abs().mean()
    assert err < 0.02 and err < ident / 5
    # a half-pixel shift of the map is measurably worse: the pixel-centre convention is right
    shifted = sample_image(c["images"][[ref]], uv + torch.tensor([0.5, 0.0]))
    assert (shifted - c["images"][[novel]]).abs()[ok.expand(-1, -1, -1)].mean() > err * 1.3


def test_numpy_warp_matches_torch(corridor):
    c = corridor
    uv, z = backward_warp_coords(c["depth"][[13]], c["K"][None], c["c2ws"][[13]], c["K"][None], c["c2ws"][[19]])
    uv2, z2 = warp_coords_np(c["depth"][13, ..., 0].numpy(), c["K"].numpy(), c["c2ws"][13].numpy(), c["K"].numpy(),
                             c["c2ws"][19].numpy())
    assert np.allclose(uv[0].numpy(), uv2, atol=1e-3) and np.allclose(z[0, ..., 0].numpy(), z2, rtol=1e-5)


def test_warp_identity_pose_is_identity(corridor):
    c = corridor
    uv, z = backward_warp_coords(c["depth"][[5]], c["K"][None], c["c2ws"][[5]], c["K"][None], c["c2ws"][[5]])
    out = sample_image(c["images"][[5]], uv)
    assert torch.allclose(out, c["images"][[5]], atol=1e-4)
    assert torch.allclose(z, c["depth"][[5]], rtol=1e-5)


@pytest.mark.parametrize("use_flow", [False, True])
def test_reproject_fixer_restores_detail(corridor, use_flow):
    """Blurred renders at true depth: the fixed views are far closer to the truth."""
    c = corridor
    novel = [4, 13, 24]
    gt = c["images"][novel]
    blurred = _blur(gt)
    req = FixRequest(blurred, c["K"].expand(3, 3, 3), c["c2ws"][novel], _refs(c), depth=c["depth"][novel])
    res = get_fixer("reproject", use_flow=use_flow).fix(req)
    assert res.images.shape == gt.shape and res.confidence.shape == (3, H, W, 1)
    assert 0 <= float(res.confidence.min()) and float(res.confidence.max()) <= 1
    assert res.confidence.mean() > 0.7
    e_fix = (res.images - gt).abs().mean()
    e_blur = (blurred - gt).abs().mean()
    assert e_fix < 0.5 * e_blur


def test_reproject_threads_do_not_change_results(corridor):
    """Views are fixed on worker threads (each with its own DIS object): same bits as serially."""
    c = corridor
    novel = [4, 13, 24, 7]
    blurred = _blur(c["images"][novel])
    req = FixRequest(blurred, c["K"].expand(4, 3, 3), c["c2ws"][novel], _refs(c), depth=c["depth"][novel])
    one = get_fixer("reproject", threads=1).fix(req)
    four = get_fixer("reproject", threads=4).fix(req)
    assert torch.equal(one.images, four.images) and torch.equal(one.confidence, four.confidence)
    assert torch.equal(one.extras["ref_index"], four.extras["ref_index"])


def test_reproject_input_pose_returns_input(corridor):
    c = corridor
    req = FixRequest(_blur(c["images"][[9]]), c["K"][None], c["c2ws"][[9]], _refs(c), depth=c["depth"][[9]])
    res = get_fixer("reproject").fix(req)
    inner = (slice(None), slice(4, -4), slice(4, -4))
    assert (res.images - c["images"][[9]])[inner].abs().mean() < 0.01


def test_reproject_exact_input_camera_is_the_input(corridor):
    """At an input camera the result is that input frame, with confidence 1."""
    c = corridor
    req = FixRequest(_blur(c["images"][[19]]), c["K"][None], c["c2ws"][[19]], _refs(c), depth=c["depth"][[19]] * 1.3)
    res = get_fixer("reproject").fix(req)
    assert torch.equal(res.images, c["images"][[19]])
    assert torch.all(res.confidence == 1)


def test_choose_references_brackets_the_novel_camera(corridor):
    c = corridor
    ref_c2ws = c["c2ws"][INPUTS]
    for frame, pair in [(4, {0, 1}), (13, {1, 2}), (24, {2, 3})]:
        dist = camera_distances(c["c2ws"][[frame]], ref_c2ws)[0].numpy()
        a, b, t = choose_references(dist, c["c2ws"][frame, :3, 3].numpy(), ref_c2ws[:, :3, 3].numpy(), 2)
        assert {a, b} == pair and 0 < t <= 0.5
        k0 = INPUTS[min(pair)]
        expect = (frame - k0) / (INPUTS[max(pair)] - k0)
        assert abs((t if a == min(pair) else 1 - t) - expect) < 0.1
    # outside the span of the references: only the nearest one
    before = c["c2ws"][0].clone()
    before[:3, 3] -= 0.5 * (c["c2ws"][9, :3, 3] - c["c2ws"][0, :3, 3])
    dist = camera_distances(before[None], ref_c2ws)[0].numpy()
    assert choose_references(dist, before[:3, 3].numpy(), ref_c2ws[:, :3, 3].numpy(), 2)[1:] == (None, 0.0)


def test_reproject_robust_to_noisy_depth(corridor):
    """Rendered depth of a sparse reconstruction is noisy; the smoothed warp + flow still restores detail."""
    c = corridor
    novel = [5, 14, 23]
    gt = c["images"][novel]
    blurred = _blur(gt)
    g = torch.Generator().manual_seed(0)
    speckle = torch.exp(0.3 * torch.randn(3, H, W, 1, generator=g))
    smooth = 1 + 0.1 * torch.sin(torch.linspace(0, 6, W)).view(1, 1, W, 1)
    req = FixRequest(blurred, c["K"].expand(3, 3, 3), c["c2ws"][novel], _refs(c), depth=c["depth"][novel] * speckle * smooth)
    res = get_fixer("reproject").fix(req)
    inner = (slice(None), slice(6, -6), slice(6, -6))
    assert (res.images - gt)[inner].abs().mean() < 0.45 * (blurred - gt)[inner].abs().mean()


def test_reproject_confidence_flags_disagreeing_references(corridor):
    """A reference that shows something else in one region: the result there is not trusted."""
    c = corridor
    refs = _refs(c)
    imgs = refs.images.clone()
    imgs[1, 30:60, 60:100] = torch.tensor([1.0, 0.0, 1.0])  # a magenta patch only in input 9
    refs = RefViews(imgs, refs.Ks, refs.c2ws, refs.depth)
    req = FixRequest(_blur(c["images"][[13]]), c["K"][None], c["c2ws"][[13]], refs, depth=c["depth"][[13]])
    res = get_fixer("reproject").fix(req)
    conf = res.confidence[0, ..., 0]
    bad = (res.images[0] - c["images"][13]).abs().mean(-1) > 0.15
    assert bad.any()
    assert conf[bad].mean() < 0.6 * conf[~bad].mean()


def test_reproject_respects_occlusion(corridor):
    """A reference whose own depth says the point is hidden (here: a fake occluder in front of the
    whole reference) must not be used."""
    c = corridor
    refs = _refs(c)
    refs = RefViews(refs.images, refs.Ks, refs.c2ws, refs.depth * 0.5)
    req = FixRequest(_blur(c["images"][[13]]), c["K"][None], c["c2ws"][[13]], refs, depth=c["depth"][[13]])
    res = get_fixer("reproject", use_flow=False).fix(req)
    assert res.confidence.max() < 1e-3
    assert torch.allclose(res.images, req.renders, atol=1e-5)


def test_reproject_without_depth_uses_flow(corridor):
    c = corridor
    gt = c["images"][[11]]
    req = FixRequest(_blur(gt), c["K"][None], c["c2ws"][[11]], _refs(c, with_depth=False))
    res = get_fixer("reproject").fix(req)
    assert (res.images - gt).abs().mean() < (req.renders - gt).abs().mean()


def test_reproject_fixer_leaves_the_given_config_alone():
    from sparsevid.fixer.reproject import ReprojectConfig, ReprojectFixer

    cfg = ReprojectConfig()
    fixer = ReprojectFixer(cfg, num_refs=1, use_flow=False)
    assert cfg == ReprojectConfig() and fixer.config is not cfg
    assert fixer.config.num_refs == 1 and not fixer.config.use_flow
    with pytest.raises(TypeError, match="unknown option 'warp_factor'"):
        ReprojectFixer(cfg, warp_factor=9)


def test_build_fixer_takes_arguments_from_the_registered_class():
    from sparsevid.fixer.difix import DifixFixer

    assert build_fixer(FixerConfig(num_refs=1)).config.num_refs == 1
    assert build_fixer(FixerConfig(num_refs=1, options={"num_refs": 3})).config.num_refs == 3  # options win
    cfg = FixerConfig(name="difix", difix_weights="w")
    assert DifixFixer.config_kwargs(cfg, "cpu") == {"weights": "w", "device": "cpu"}  # auto = the trainer's
    assert DifixFixer.config_kwargs(cfg) == {"weights": "w", "device": "auto"}
    assert DifixFixer.config_kwargs(FixerConfig(name="difix", device="cuda"), "cpu")["device"] == "cuda"


def test_camera_distances_orders_by_proximity(corridor):
    c = corridor
    d = camera_distances(c["c2ws"][[1, 14, 27]], c["c2ws"][INPUTS])
    assert d.argmin(1).tolist() == [0, 1, 3] or d.argmin(1).tolist() == [0, 2, 3]


# ---- progressive schedule -------------------------------------------------------------------
def _trans_rot(a, b):
    return np.linalg.norm(a[:3, 3] - b[:3, 3]), float(rotation_angle_deg(a[:3, :3], b[:3, :3]))


def test_plan_moves_monotonically_within_limits():
    poses = synthetic.trajectory(30)
    rng = np.random.default_rng(0)
    train = poses[INPUTS]
    targets = poses[[i for i in range(30) if i not in INPUTS]].copy()
    # make the targets rotate more than the walk does, to exercise the rotation limit
    for t in targets:
        t[:3, :3] = t[:3, :3] @ synthetic.look_pose(np.zeros(3), rng.uniform(-0.2, 0.2))[:3, :3]
    spacing = median_neighbor_spacing(train)
    max_t, max_r, rounds = 0.15 * spacing, 2.0, 4
    near = nearest_cameras(train, targets)
    prev = None
    for r in range(rounds):
        p = plan_pseudo_cameras(train, targets, r, rounds, max_t, max_r)
        assert p.shape == targets.shape
        for m, (cam, tgt) in enumerate(zip(p, targets)):
            start = train[near[m]]
            dt, dr = _trans_rot(start, cam)
            assert dt <= (r + 1) * max_t + 1e-9 and dr <= (r + 1) * max_r + 1e-6
            assert np.allclose(cam[:3, :3] @ cam[:3, :3].T, np.eye(3), atol=1e-9)
            if prev is not None:
                d_now, d_prev = _trans_rot(cam, tgt), _trans_rot(prev[m], tgt)
                assert d_now[0] <= d_prev[0] + 1e-9 and d_now[1] <= d_prev[1] + 1e-6
        prev = p
    # unlimited: the last round reaches the targets exactly, the first goes 1/rounds of the way
    last = plan_pseudo_cameras(train, targets, rounds - 1, rounds, 0, 0)
    assert np.allclose(last, targets, atol=1e-9)
    first = plan_pseudo_cameras(train, targets, 0, rounds, 0, 0)
    for m, tgt in enumerate(targets):
        full = _trans_rot(train[near[m]], tgt)[0]
        assert abs(_trans_rot(train[near[m]], first[m])[0] - full / rounds) < 1e-9


def test_interpolate_and_fix_steps():
    a, b = synthetic.look_pose(np.zeros(3), 0.0), synthetic.look_pose(np.array([1.0, 0, 0]), 0.4)
    assert np.allclose(interpolate_c2w(a, b, 0), a) and np.allclose(interpolate_c2w(a, b, 1), b)
    mid = interpolate_c2w(a, b, 0.5)
    assert abs(rotation_angle_deg(a[:3, :3], mid[:3, :3]) - np.degrees(0.2)) < 1e-6
    steps = default_fix_steps(3000, 3)
    assert steps == sorted(set(steps)) and len(steps) == 3 and 0 < steps[0] and steps[-1] < 3000
    assert ProgressiveConfig(fix_steps=[0, 10, 50, 99999]).steps_for(100) == [10, 50]


# ---- enhancement ------------------------------------------------------------------------------
def test_smooth_confidence_bounded_and_smooth():
    conf = torch.zeros(9, 8, 8, 1)
    conf[::2] = 1.0  # flickering on/off
    sm = smooth_confidence(conf, 1.0, 0.0)
    assert torch.all(sm <= conf + 1e-6)
    sm2 = smooth_confidence(torch.rand(9, 8, 8, 1) * 0.2 + 0.8, 1.5, 0.0)
    assert sm2.min() > 0.75
    d = (sm2[1:] - sm2[:-1]).abs().mean()
    assert d < 0.1


def test_smooth_confidence_of_a_window_is_the_whole_sequences():
    """The enhancement smooths each chunk's weight from the few chunks around it: the same numbers as the average
    written out over the whole sequence, at the ends and in the middle."""
    from sparsevid.fixer.enhance import smooth_confidence_of

    g = torch.Generator().manual_seed(0)
    conf = torch.rand(13, 6, 7, 1, generator=g)
    for sigma in (0.5, 1.0, 2.0):
        r = max(1, int(round(3 * sigma)))
        w = torch.exp(-0.5 * (torch.arange(-r, r + 1).float() / sigma) ** 2)
        acc, wsum = torch.zeros_like(conf), torch.zeros(13, 1, 1, 1)
        for o, wo in zip(range(-r, r + 1), w):
            for t in range(13):
                if 0 <= t + o < 13:
                    acc[t] += wo * conf[t + o]
                    wsum[t] += wo
        want = torch.minimum(acc / wsum, conf)
        assert torch.equal(smooth_confidence(conf, sigma, 0.0), want)
        for a, b in ((0, 4), (4, 8), (8, 13), (5, 6)):
            first, last = max(0, a - r), min(13, b + r)
            got = smooth_confidence_of(conf[first:last], first, 13, slice(a, b), sigma, 1.5)
            assert torch.equal(got, smooth_confidence(conf, sigma, 1.5)[a:b]), (sigma, a, b)
        with pytest.raises(ValueError, match="need the confidence of frames"):
            smooth_confidence_of(conf[5:8], 5, 13, slice(5, 8), sigma, 0.0)


def test_enhance_sequence(corridor):
    c = corridor
    frames = list(range(9, 20))
    gt = c["images"][frames]
    renders = _blur(gt)
    res = enhance_frames(get_fixer("reproject"), renders, c["K"].expand(len(frames), 3, 3), c["c2ws"][frames],
                         _refs(c), depth=c["depth"][frames], config=EnhanceConfig(temporal_sigma=1.0))
    assert res.images.shape == gt.shape
    assert (res.images - gt).abs().mean() < 0.6 * (renders - gt).abs().mean()
    # no flicker introduced: frame-to-frame change stays close to the truth's
    ch = (res.images[1:] - res.images[:-1]).abs().mean()
    ch_gt = (gt[1:] - gt[:-1]).abs().mean()
    assert abs(ch - ch_gt) < 0.25 * ch_gt
    # the same numbers in chunks of any size (filled and blended a chunk at a time in place), and the renders
    # given are left as they were
    before = renders.clone()
    for chunk in (1, 4):
        other = enhance_frames(get_fixer("reproject"), renders, c["K"].expand(len(frames), 3, 3), c["c2ws"][frames],
                               _refs(c), depth=c["depth"][frames],
                               config=EnhanceConfig(temporal_sigma=1.0, chunk=chunk))
        assert torch.equal(other.images, res.images) and torch.equal(other.confidence, res.confidence), chunk
        assert torch.equal(other.extras["blend_weight"], res.extras["blend_weight"]), chunk
    assert torch.equal(renders, before)
    # a fixer that gives back fewer frames than it was given: an error, not rows of uninitialised memory
    real = get_fixer("reproject")

    class Short:
        def fix(self, req):
            out = real.fix(req)
            return FixResult(out.images[:-1], out.confidence[:-1], extras={})

    with pytest.raises(RuntimeError, match=r"Short.fix returned \[2, 2, 2\] frames .* for the 3 it was given"):
        enhance_frames(Short(), renders, c["K"].expand(len(frames), 3, 3), c["c2ws"][frames], _refs(c),
                       depth=c["depth"][frames], config=EnhanceConfig(chunk=3))


def test_enhance_chunk_is_bounded_by_the_canvas_size(monkeypatch):
    """An automatic chunk holds a frame per core (at least 8), but a 4K canvas's 8 frames would hold 2.7 GB at
    once, two or three chunks of them in flight: fewer frames of a big canvas."""
    from sparsevid.fixer import enhance

    monkeypatch.setattr(enhance.os, "cpu_count", lambda: 16)
    auto = EnhanceConfig()
    assert enhance.chunk_size(auto) == 16 and enhance.chunk_size(auto, 1236 * 700) == 16
    assert enhance.chunk_size(auto, 3840 * 2160) == 3 and enhance.chunk_size(auto, 10 ** 9) == 1
    assert enhance.chunk_size(EnhanceConfig(chunk=5), 3840 * 2160) == 5  # as given
    monkeypatch.setattr(enhance.os, "cpu_count", lambda: 2)
    assert enhance.chunk_size(auto, 1236 * 700) == 8


def test_enhance_stream_renders_and_gives_back_a_chunk_at_a_time(corridor):
    """The run renders the path a chunk at a time as the enhancement takes it, and distorts each chunk as it comes
    back: the same rows as enhance_frames over the whole sequence, each chunk rendered once, in order."""
    c = corridor
    frames = list(range(9, 20))
    renders = _blur(c["images"][frames])
    Ks, c2ws, depth = c["K"].expand(len(frames), 3, 3), c["c2ws"][frames], c["depth"][frames]
    cfg = EnhanceConfig(temporal_sigma=1.0, chunk=4)
    whole = enhance_frames(get_fixer("reproject"), renders, Ks, c2ws, _refs(c), depth=depth, config=cfg)
    asked = []

    def canvas(sl):  # numpy, as PathRenderer gives them
        asked.append((sl.start, sl.stop))
        return renders[sl].numpy().copy(), depth[sl].numpy().copy(), None

    got = list(enhance_stream(get_fixer("reproject"), canvas, Ks, c2ws, _refs(c), config=cfg))
    assert asked == [(0, 4), (4, 8), (8, 11)]
    assert [(sl.start, sl.stop) for sl, _ in got] == asked
    for sl, part in got:
        assert torch.equal(part.images, whole.images[sl]) and torch.equal(part.confidence, whole.confidence[sl])
        for k in ("blend_weight", "raw_blend_weight", "raw_confidence"):
            assert torch.equal(part.extras[k], whole.extras[k][sl]), k

    class GivesTheRenderBack(Fixer):  # its images are the request's own renders: blended in memory of their own
        def fix(self, req):
            return FixResult(req.renders, torch.full_like(req.renders[..., :1], 0.5))

    kept = renders.clone()
    same = enhance_frames(GivesTheRenderBack(), renders, Ks, c2ws, _refs(c), config=cfg)
    assert torch.equal(renders, kept) and torch.allclose(same.images, kept)

    class KeepsItsOutputs(Fixer):  # or a view of the references: the blend must not write into them
        def __init__(self):
            self.outputs = []

        def fix(self, req):
            self.outputs.append(torch.full_like(req.renders, 0.9))
            return FixResult(self.outputs[-1], torch.full_like(req.renders[..., :1], 0.5))

    keeps = KeepsItsOutputs()
    enhance_frames(keeps, renders, Ks, c2ws, _refs(c), config=cfg)
    assert len(keeps.outputs) == 3 and all(bool((x == 0.9).all()) for x in keeps.outputs)


# ---- with the real trainer (CPU, tiny) ---------------------------------------------------------
def test_progressive_loop_keeps_all_rounds_cpu(tiny_scene):
    trainer_mod = pytest.importorskip("sparsevid.gaussians.trainer")
    from sparsevid.fixer.progressive import InputViews, ProgressiveUpdater

    sc = tiny_scene
    K = sc.camera.K
    views = [trainer_mod.TrainView(image=f.image, K=K, c2w=f.c2w) for f in sc.frames]
    cfg = trainer_mod.TrainConfig(steps=8, seed=0, quiet=True, sh_degree=0)
    tr = trainer_mod.Trainer(cfg, views, sc.points[::8], sc.point_colors[::8], "cpu")
    targets = np.stack([f.c2w for f in sc.gt_frames])[::3]
    upd = ProgressiveUpdater(get_fixer("reproject"), InputViews.from_train_views(views), targets, K,
                             ProgressiveConfig(fix_steps=[3, 6], pseudo_weight=0.5, render_chunk=8))
    hooks = upd.hooks(tr.total_steps)
    assert len(hooks) == 2
    tr.train(hooks=hooks)
    kinds = [(v.kind, v.round) for v in tr.views]
    n_t = len(upd.target_c2ws)
    assert kinds.count(("input", 0)) == 4
    assert kinds.count(("pseudo", 0)) == n_t and kinds.count(("pseudo", 1)) == n_t
    pseudo = [v for v in tr.views if v.kind == "pseudo"]
    assert all(v.weight == 0.5 and v.image.shape == (32, 48, 3) and v.mask.shape == (32, 48, 1) for v in pseudo)
    assert all(0 <= v.mask.min() and v.mask.max() <= 1 for v in pseudo)
    assert len(upd.history) == 2 and upd.history[1].step > upd.history[0].step
    # round 2 cameras are at least as close to the targets as round 1's
    d0 = np.linalg.norm(upd.history[0].pseudo_c2ws[:, :3, 3] - upd.target_c2ws[:, :3, 3], axis=1)
    d1 = np.linalg.norm(upd.history[1].pseudo_c2ws[:, :3, 3] - upd.target_c2ws[:, :3, 3], axis=1)
    assert np.all(d1 <= d0 + 1e-9)
