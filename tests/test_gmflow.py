"""GMFlow (sparsevid.fuse.gmflow) and the 2D route's per-pixel choice among flows (sparsevid.fuse.flow2d)."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sparsevid.errors import SparsevidError
from sparsevid.fuse import gmflow
from sparsevid.fuse.flow2d import FlowConfig, choice_costs, choose_flow, chosen_pair_flow, flow_for_video, pair_flow

DEMO = Path(__file__).resolve().parents[1] / "sparsevid" / "data" / "demo"


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((h // 4 + 1, w // 4 + 1, 3)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)[:h, :w]
    return np.clip(big * 255, 0, 255).astype(np.uint8)


def test_position_code_is_sine_and_cosine_of_the_normalised_row_and_column():
    code = gmflow.position_code(2, 3, 4, torch.device("cpu"))  # 4 channels: one frequency per axis, (sin, cos)
    ys = torch.tensor([1.0, 2.0]) / 2 * 2 * math.pi
    xs = torch.tensor([1.0, 2.0, 3.0]) / 3 * 2 * math.pi
    assert code.shape == (4, 2, 3)
    assert torch.allclose(code[0], ys.sin()[:, None].expand(2, 3), atol=1e-5)
    assert torch.allclose(code[1], ys.cos()[:, None].expand(2, 3), atol=1e-5)
    assert torch.allclose(code[2], xs.sin()[None, :].expand(2, 3), atol=1e-5)
    assert torch.allclose(code[3], xs.cos()[None, :].expand(2, 3), atol=1e-5)


def test_shift_mask_separates_the_regions_a_cyclic_shift_brings_together():
    mask = gmflow._shift_mask(8, 8, 2, torch.device("cpu"))  # 2 x 2 windows of 4 x 4 pixels
    assert mask.shape == (4, 16, 16)
    assert (mask[0] == 0).all()  # the top-left window holds one region only
    assert (mask[3] < 0).any() and (mask[3] == mask[3].T).all()  # the bottom-right one mixes four
    assert set(mask.unique().tolist()) == {0.0, -100.0}


def test_gmflow_loads_its_own_state_dict_and_gives_a_flow_per_pixel(tmp_path):
    torch.manual_seed(0)
    net = gmflow.GMFlow()
    for p in net.parameters():  # random weights of a sensible scale
        torch.nn.init.normal_(p, std=0.02)
    path = tmp_path / "flownet.pkl"
    torch.save(net.state_dict(), path)
    assert len(net.state_dict()) == 124  # the released checkpoint's tensor count
    loaded = gmflow.load_gmflow(path)
    a, b = _texture(70, 90), _texture(70, 90, seed=1)
    flow = gmflow.gmflow_flow(loaded, a, b)
    assert flow.shape == (70, 90, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    # downscaled for the network above max_side, and scaled back
    small = gmflow.gmflow_flow(loaded, a, b, max_side=48)
    assert small.shape == (70, 90, 2) and np.isfinite(small).all()


def test_gmflow_weights_errors_are_one_line_with_the_fix(tmp_path):
    with pytest.raises(SparsevidError, match="not found"):
        gmflow.load_gmflow(tmp_path / "missing.pkl")
    bad = tmp_path / "bad.pkl"
    torch.save({"backbone.conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(SparsevidError, match="do not fit"):
        gmflow.load_gmflow(bad)


@pytest.mark.skipif(gmflow.weights_path() is None, reason=f"GMFlow weights not installed ({gmflow.INSTALL_HINT})")
def test_released_gmflow_follows_a_known_shift_of_a_real_frame():
    img = cv2.imread(str(DEMO / "frame_0009.png"))[:, :, ::-1]
    a = np.ascontiguousarray(img[100:420, 200:680])
    b = np.ascontiguousarray(img[92:412, 184:664])  # a(p) = b(p + (16, 8)): a large motion, what GMFlow is for
    flow = gmflow.gmflow_flow(gmflow.load_gmflow(), a, b)
    inner = flow[16:-16, 16:-16]
    assert np.allclose(np.median(inner.reshape(-1, 2), 0), [16.0, 8.0], atol=0.2)
    assert np.mean(np.abs(inner - np.float32([16.0, 8.0])) > 0.5) < 0.05


def test_choice_costs_are_the_colour_error_plus_the_weighted_inconsistency():
    a = _texture(60, 80)
    b = np.roll(a, 6, axis=1)  # a(p) = b(p + (6, 0))
    right = np.zeros((60, 80, 2), np.float32)
    right[..., 0] = 6.0
    fwd = {"right": right, "right, wrong way back": right, "still": np.zeros_like(right)}
    bwd = {"right": -right, "right, wrong way back": np.zeros_like(right), "still": np.zeros_like(right)}
    costs = choice_costs(a, b, fwd, bwd, sigma=1.0, fb_weight=2.0)
    inner = (slice(10, -10), slice(10, -20))
    assert costs.shape == (3, 60, 80)
    assert costs[0][inner].max() < 0.5  # the right flow resamples b onto a, and its way back undoes it
    assert np.allclose(costs[1][inner] - costs[0][inner], 2.0 * 6.0, atol=0.5)  # same colours, 6 px inconsistent
    assert costs[2][inner].mean() > 5.0  # consistent, but the colours differ


def test_choose_flow_takes_per_region_the_candidate_that_matches():
    a = _texture(60, 80)
    b = a.copy()
    b[:, :40] = np.roll(a, 6, axis=1)[:, :40]  # the left half moved 6 px right, the right half stood still
    still = np.zeros((60, 80, 2), np.float32)
    moved = np.zeros((60, 80, 2), np.float32)
    moved[..., 0] = 6.0
    fwd = {"still": still, "moved": moved}
    bwd = {"still": still, "moved": -moved}
    out = choose_flow(a, b, fwd, bwd, sigma=2.0, fb_weight=2.0)
    assert np.allclose(out[10:-10, 12:30, 0], 6.0) and np.allclose(out[10:-10, 50:-10, 0], 0.0)


def test_soft_choice_keeps_a_clear_winner_and_averages_candidates_that_err_alike():
    a = _texture(60, 80)
    b = a.copy()
    b[:, :40] = np.roll(a, 6, axis=1)[:, :40]  # left half moved 6 px right, right half still
    b[:, 40:] = _texture(60, 40, seed=1)  # right half: nothing matches (new content)
    moved = np.zeros((60, 80, 2), np.float32)
    moved[..., 0] = 6.0
    other = np.zeros_like(moved)
    other[..., 0] = 2.0
    fwd = {"moved": moved, "other": other}
    bwd = {"moved": -moved, "other": -other}
    out = choose_flow(a, b, fwd, bwd, sigma=2.0, fb_weight=2.0, temperature=1.0, relative=0.25)
    assert np.allclose(out[10:-10, 12:30, 0], 6.0, atol=0.05)  # the right flow wins clearly on the left
    near_one = lambda f: np.mean((np.abs(f - 2.0) < 0.3) | (np.abs(f - 6.0) < 0.3))  # noqa: E731
    assert near_one(out[10:-10, 52:-10, 0]) < 0.2  # both err alike on the right: blends, not one of them
    hard = choose_flow(a, b, fwd, bwd, sigma=2.0, fb_weight=2.0)
    assert near_one(hard[10:-10, 52:-10, 0]) == 1.0


def test_chosen_pair_flow_takes_the_learned_flow_where_dis_misses_a_large_motion():
    a = _texture(96, 128, seed=3)
    b = np.roll(a, 24, axis=1)  # everything 24 px right (a wrapped texture: no occlusion)
    truth = np.zeros((96, 128, 2), np.float32)
    truth[..., 0] = 24.0

    def learned(x, y):  # a stand-in learned flow that knows the motion
        return truth.copy() if x is a or np.array_equal(x, a) else -truth

    cfg = FlowConfig(prealign="never")
    dis = pair_flow(a, b, cfg)
    chosen = chosen_pair_flow(a, b, cfg, learned=learned)
    err_dis = np.abs(dis.fab - truth)[..., 0][16:-16, 32:-32]
    err = np.abs(chosen.fab - truth)[..., 0][16:-16, 32:-32]
    assert np.mean(err_dis > 1.0) > 0.2  # the case needs DIS to miss it (else it proves nothing)
    assert np.mean(err > 1.0) < 0.05 and np.mean(np.abs(chosen.fba[..., 0] + 24.0)[16:-16, 32:-32] > 1.0) < 0.05


def test_flows_choose_only_with_gmflow_and_a_3d_route():
    a, b = _texture(40, 60), _texture(40, 60, seed=2)
    cfg = FlowConfig(prealign="never")
    assert np.array_equal(chosen_pair_flow(a, b, cfg).fab, pair_flow(a, b, cfg).fab)  # no learned flow: DIS alone
    assert flow_for_video(FlowConfig(), has_3d=False).candidates == ("dis",)
    assert flow_for_video(FlowConfig(), has_3d=True).candidates == FlowConfig().candidates
    assert flow_for_video(FlowConfig(choose_without_3d=True), has_3d=False).candidates == FlowConfig().candidates
