"""The rigid check (sparsevid.fuse.rigid, route3d.rigid_check, fusion.route_gains ``suspect``): where the
3D model's still geometry cannot explain the motion between two inputs, the 3D route gives way."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsevid.data.camera import Camera
from sparsevid.fixer.base import RefViews
from sparsevid.fuse.flow2d import FlowConfig, PairFlow
from sparsevid.fuse.fusion import route_gains
from sparsevid.fuse.rigid import epipolar_segment, nonrigid_map, photo_error, rigid_flow, segment_distance
from sparsevid.fuse import route3d
from sparsevid.fuse.route3d import rigid_check
from sparsevid.fuse.stage import moved_at
from sparsevid.imaging import blur
from sparsevid.poses.undistort import Undistorter


def _pose(tx: float) -> np.ndarray:
    c2w = np.eye(4)
    c2w[0, 3] = tx
    return c2w


def test_rigid_flow_of_a_sideways_step_is_focal_times_baseline_over_depth() -> None:
    K = np.array([[50.0, 0, 20], [0, 50.0, 15], [0, 0, 1]])
    depth = np.full((30, 40), 2.0, np.float32)
    depth[0, 0] = 0.0  # unknown
    flow = rigid_flow(depth, K, _pose(0.0), _pose(0.1))
    # the camera steps 0.1 to the right: a point 2 away moves 50 * 0.1 / 2 = 2.5 px to the left
    np.testing.assert_allclose(flow[1:, 1:, 0], -2.5, atol=1e-4)
    np.testing.assert_allclose(flow[1:, 1:, 1], 0.0, atol=1e-4)
    assert np.isnan(flow[0, 0]).all()
    # a step forward of 3 puts the plane behind the camera: unknown
    back = np.eye(4)
    back[2, 3] = 3.0
    assert np.isnan(rigid_flow(depth, K, np.eye(4), back)).all()


def test_epipolar_segment_runs_between_the_rigid_flows_of_half_and_twice_the_depth() -> None:
    K = np.array([[50.0, 0, 20], [0, 50.0, 15], [0, 0, 1]])
    depth = np.full((30, 40), 2.0, np.float32)
    far, near = epipolar_segment(depth, K, _pose(0.0), _pose(0.1))
    np.testing.assert_allclose(far[..., 0], -1.25, atol=1e-4)   # depth 4
    np.testing.assert_allclose(near[..., 0], -5.0, atol=1e-4)   # depth 1
    # pure rotation: no parallax, the segment is a point
    rot = np.eye(4)
    rot[:3, :3] = [[np.cos(0.05), 0, np.sin(0.05)], [0, 1, 0], [-np.sin(0.05), 0, np.cos(0.05)]]
    far, near = epipolar_segment(depth, K, np.eye(4), rot)
    np.testing.assert_allclose(far, near, atol=1e-3)
    p = np.zeros((1, 3, 2), np.float32)
    p[0, :, 0] = [-3.0, 0.0, -8.0]
    s0 = np.broadcast_to(np.float32([-1.25, 0.0]), (1, 3, 2))
    s1 = np.broadcast_to(np.float32([-5.0, 0.0]), (1, 3, 2))
    np.testing.assert_allclose(segment_distance(p, s0, s1)[0], [0.0, 1.25, 3.0], atol=1e-5)


def test_nonrigid_map_flags_consistent_motion_off_the_epipolar_segment_and_nothing_else() -> None:
    h, w = 20, 100
    s0 = np.zeros((h, w, 2), np.float32)
    s1 = np.zeros((h, w, 2), np.float32)
    s1[..., 0] = -40.0  # depth within a factor 2 moves a pixel up to 40 px to the left
    flow = np.zeros((h, w, 2), np.float32)
    err = np.zeros((h, w), np.float32)
    flow[:, 0:10, 0] = -30.0  # on its segment: a depth error, not motion
    flow[:, 20:40, 1] = 15.0   # 15 px off its segment, flow consistent: moved by itself
    flow[:, 60:80, 1] = 15.0   # the same, but the flow is inconsistent there: it shows nothing
    err[:, 60:80] = 10.0
    s0[:, 90:, :] = np.nan     # no depth
    flow[:, 90:, 1] = 15.0
    m = nonrigid_map((s0, s1), flow, err, w, tolerance=6.0, fb_tolerance=1.5)
    assert m.shape == (h, w) and m.dtype == np.float32
    assert m[:, 20:40].min() > 0.99
    assert m[:, :20].max() < 1e-6 and m[:, 40:60].max() < 1e-6 and m[:, 90:].max() == 0.0
    assert m[:, 60:80].max() < 1e-3


def test_where_the_flow_is_inconsistent_the_frames_themselves_say_what_moved() -> None:
    h, w = 40, 120
    a = _texture(h, w + 10, 0)
    b = a[:, 4:4 + w].copy()             # the still scene moves 4 px to the left ...
    a = a[:, :w].copy()
    b[10:30, 70:100] = 0.95  # ... and something white came into view at 70-100 (74-104 in a's pixels)
    rigid = np.zeros((h, w, 2), np.float32)
    rigid[..., 0] = -4.0
    err = photo_error(a, b, (rigid, rigid), radius=1.5, sigma=1.0)
    assert err.shape == (h, w) and np.isnan(err[:, :3]).all()  # sampled left of b's first column: unknown
    assert np.nanmax(err[:, 10:60]) < 0.02 and err[14:26, 80:98].min() > 0.2
    flow = rigid.copy()
    fb = np.full((h, w), 50.0, np.float32)  # no flow to trust anywhere
    m = nonrigid_map((rigid, rigid), flow, fb, w, 6.0, 1.5, err, photo_tolerance=0.1)
    assert m[14:26, 80:98].min() > 0.9 and m[:, 10:60].max() < 0.05 and m[:, :3].max() == 0.0
    # without the frames' own test an inconsistent flow shows nothing
    assert nonrigid_map((rigid, rigid), flow, fb, w, 6.0, 1.5).max() < 1e-6


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(0.5 + 4.0 * (blur(rng.random((h, w, 3)).astype(np.float32), 4.0) - 0.5), 0, 1)


@pytest.mark.parametrize("work_width", [512, 120])  # as given; downscaled for the check, maps back at full size
def test_rigid_check_finds_an_object_that_moved_by_itself_and_not_the_still_scene(work_width, monkeypatch) -> None:
    monkeypatch.setattr(route3d, "RIGID_WIDTH", work_width)
    h, w, f, z, step = 120, 160, 100.0, 2.0, 0.06  # the still scene moves 3 px to the left
    cam = Camera.pinhole(f, f, w / 2, h / 2, w, h)
    und = Undistorter.for_camera(cam)
    assert und.canvas_size == (w, h)
    shift = int(round(f * step / z))
    bg = _texture(h, w + 40, 0)
    box = _texture(36, 36, 1)
    a = bg[:, 20:20 + w].copy()
    b = bg[:, 20 + shift:20 + shift + w].copy()
    a[40:76, 40:76] = box
    b[40:76, 52:88] = box  # the box moves 12 px to the right by itself
    K = torch.tensor([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]]).float()
    refs = RefViews(torch.from_numpy(np.stack([a, b])).float(), K.expand(2, 3, 3),
                    torch.from_numpy(np.stack([_pose(0.0), _pose(step)])).float(),
                    torch.full((2, h, w, 1), z))
    maps = rigid_check(refs, und, [0, 9], tolerance=6.0, flow=FlowConfig(mirrors=1), photo_tolerance=0.1)
    assert set(maps) == {(0, 9)}
    ma, mb = maps[(0, 9)]
    assert ma.shape == (h, w) and mb.shape == (h, w)
    # the box's inside, where it is in each frame, is flagged; the still scene away from it is not
    assert ma[46:70, 46:70].mean() > 0.8 and mb[46:70, 58:82].mean() > 0.8
    still = np.ones((h, w), bool)
    still[25:95, 25:100] = False
    still[:, :10] = still[:, -10:] = False  # the borders, where the scene leaves the frame
    assert ma[still].mean() < 0.05 and mb[still].mean() < 0.05


def test_moved_at_carries_both_keys_maps_along_the_motion() -> None:
    h, w = 20, 60
    fab = np.zeros((h, w, 2), np.float32)
    fab[..., 0] = 20.0  # everything moves 20 px to the right from a to b
    flow = PairFlow(fab, -fab, np.zeros((h, w), np.float32), np.zeros((h, w), np.float32))
    ma = np.zeros((h, w), np.float32)
    mb = np.zeros((h, w), np.float32)
    ma[:, 10:14] = 1.0   # in a's pixels
    mb[:, 30:34] = 1.0   # the same thing in b's
    m = moved_at((ma, mb), 0.5, flow)
    assert m[:, 20:24].min() > 0.99  # half-way at t = 0.5
    assert m[:, :18].max() < 1e-6 and m[:, 26:].max() < 1e-6


def test_a_suspect_route_gives_way_where_it_disagrees_with_the_others_and_only_there() -> None:
    h, w = 40, 80
    truth = np.full((h, w, 3), 0.5, np.float32)
    img3 = truth.copy()
    img3[:, :40] = 0.9  # the 3D route paints something else over the left half
    images = {"2d": truth, "learned": truth + 0.01, "3d": img3}
    errors = {"2d": np.full((h, w), 1e-3, np.float32), "learned": np.full((h, w), 1e-3, np.float32),
              "3d": np.full((h, w), 1e-4, np.float32)}  # the leave-one-out trusted it most everywhere
    plain = route_gains(errors, 2.0, images)
    rho = np.ones((h, w), np.float32)
    g = route_gains(errors, 2.0, images, suspect={"3d": rho})
    assert g["3d"][:, :30].max() < 0.05 < plain["3d"][:, :30].min()
    np.testing.assert_allclose(g["3d"][:, 50:], plain["3d"][:, 50:], atol=1e-3)  # where it agrees: as before
    np.testing.assert_allclose(sum(g.values()), 1.0, atol=1e-5)  # still shares
    # not suspected: as without
    none = route_gains(errors, 2.0, images, suspect={"3d": np.zeros((h, w), np.float32)})
    for r in plain:
        np.testing.assert_allclose(none[r], plain[r], atol=1e-6)


def test_a_suspect_route_is_charged_only_what_its_disagreement_exceeds_the_others_own_error() -> None:
    """Where the other routes are unreliable themselves (their leave-one-out error as large as the
    disagreement), disagreeing with them says nothing against the suspect route: its gains stay as
    without the charge. Charged the whole disagreement (``suspect_net`` False), it would give way."""
    h, w = 40, 80
    truth = np.full((h, w, 3), 0.5, np.float32)
    img3 = truth.copy()
    img3[:, :40] = 0.9
    images = {"2d": truth, "learned": truth + 0.01, "3d": img3}
    errors = {"2d": np.full((h, w), 0.3, np.float32), "learned": np.full((h, w), 0.3, np.float32),
              "3d": np.full((h, w), 1e-3, np.float32)}
    rho = {"3d": np.ones((h, w), np.float32)}
    plain = route_gains(errors, 2.0, images)
    net = route_gains(errors, 2.0, images, suspect=rho)
    whole = route_gains(errors, 2.0, images, suspect=rho, suspect_net=False)
    np.testing.assert_allclose(net["3d"], plain["3d"], atol=1e-6)
    assert whole["3d"][:, :30].max() < plain["3d"][:, :30].min() - 0.3
    # where the others are reliable, the net charge is nearly the whole one (the test above)
    errors_ok = {**errors, "2d": np.full((h, w), 1e-3, np.float32), "learned": np.full((h, w), 1e-3, np.float32)}
    a = route_gains(errors_ok, 2.0, images, suspect=rho)
    b = route_gains(errors_ok, 2.0, images, suspect=rho, suspect_net=False)
    np.testing.assert_allclose(a["3d"][:, :30], b["3d"][:, :30], atol=0.01)


def test_where_the_scene_moved_by_itself_the_estimate_does_not_believe_the_leaky_3d_rebuild() -> None:
    """A 3D route that rebuilds every held-out input exactly (its model saw that input): the leave-one-out
    rebuilds, and so the estimate, flatter it. Where the rigid check says the scene moved by itself, the
    measured rebuild is the one without the 3D route; elsewhere, and for the route gains, nothing changes."""
    from test_fuse import _corridor

    from sparsevid.fuse.flow2d import FlowConfig
    from sparsevid.fuse.fusion import FuseConfig, to_float
    from sparsevid.fuse.loo import leave_one_out
    from sparsevid.fuse.stage import moved_at_inputs

    cam, poses, imgs, depths = _corridor()
    keys = {k: imgs[k] for k in (0, 9, 19, 29)}
    exact = lambda target, refs: (to_float(imgs[target]), np.ones(imgs[0].shape[:2], np.float32))  # noqa: E731
    cfg = FuseConfig(learned="off", path_check_db=None)
    h, w = imgs[0].shape[:2]
    plain = leave_one_out(keys, cfg, exact)
    none_moved = leave_one_out(keys, cfg, exact, moved={k: np.zeros((h, w), np.float32) for k in (9, 19)})
    all_moved = leave_one_out(keys, cfg, exact, moved={k: np.ones((h, w), np.float32) for k in (9, 19)})
    # the same flows as the fused rebuilds' (a leave-one-out without a 3D route prealigns them by default)
    no3d = leave_one_out(keys, FuseConfig(learned="off", path_check_db=None, mode="2d",
                                          flow=FlowConfig(prealign="never")))
    assert "3d" not in plain.routes_off
    for k in (9, 19):
        assert none_moved.psnr[k] == plain.psnr[k]
        assert all_moved.psnr[k] < plain.psnr[k] - 3.0
        assert abs(all_moved.psnr[k] - no3d.psnr[k]) < 1e-3  # there the rebuild without the 3D route
        np.testing.assert_array_equal(all_moved.sq_errors[k]["3d"], plain.sq_errors[k]["3d"])  # gains as before
    assert all_moved.estimate([3.0])["psnr_heldout"] < plain.estimate([3.0])["psnr_heldout"] - 3.0
    # the maps at each interior input: the larger of the two pairs' it belongs to
    a, b = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    a[:5], b[-5:] = 1.0, 0.5
    maps = {(0, 9): (a, a), (9, 19): (b, b), (19, 29): (a, a)}
    at = moved_at_inputs(maps, [0, 9, 19, 29])
    assert set(at) == {9, 19}
    np.testing.assert_array_equal(at[9], np.maximum(a, b))


@pytest.mark.parametrize("work_width", [512, 120])
def test_rigid_check_sees_a_still_scene_under_a_pan_as_still_at_any_working_width(work_width, monkeypatch) -> None:
    """A pan moves every pixel by an amount set by the focal length (no parallax: the segment is a point), so
    intrinsics not scaled with the working size would show the whole still scene as moving."""
    import cv2

    monkeypatch.setattr(route3d, "RIGID_WIDTH", work_width)
    h, w, f, pan = 120, 160, 100.0, 0.06  # ~6 px of motion
    cam = Camera.pinhole(f, f, w / 2, h / 2, w, h)
    und = Undistorter.for_camera(cam)
    R = np.array([[np.cos(pan), 0, np.sin(pan)], [0, 1, 0], [-np.sin(pan), 0, np.cos(pan)]])
    c2w_b = np.eye(4)
    c2w_b[:3, :3] = R
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    Kc = K - np.array([[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]])  # OpenCV's pixel centres
    a = _texture(h, w, 3)
    b = cv2.warpPerspective(a, Kc @ R.T @ np.linalg.inv(Kc), (w, h), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REFLECT)
    refs = RefViews(torch.from_numpy(np.stack([a, b])).float(), torch.from_numpy(K).float().expand(2, 3, 3),
                    torch.from_numpy(np.stack([np.eye(4), c2w_b])).float(), torch.full((2, h, w, 1), 50.0))
    ma, mb = rigid_check(refs, und, [0, 9], tolerance=6.0, flow=FlowConfig(mirrors=1), photo_tolerance=0.1)[(0, 9)]
    inner = (slice(15, -15), slice(20, -20))
    assert ma[inner].mean() < 0.05 and mb[inner].mean() < 0.05
