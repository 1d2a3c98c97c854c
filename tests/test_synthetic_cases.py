"""The synthetic robustness cases (sparsevid.data.synthetic: moving_object, strong_rotation, walking_shake,
water, orbit, dashcam, fast_pan) at a tiny size."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sparsevid.data import synthetic
from sparsevid.data.images import read_image

W, H = 64, 48


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("name", synthetic.CASE_NAMES)
def test_write_case_is_a_deterministic_30_frame_case(name: str, tmp_path: Path) -> None:
    a = synthetic.write_case(name, tmp_path / "a", W, H)
    b = synthetic.write_case(name, tmp_path / "b", W, H)
    files = _files(a)
    frames = [n for n in files if n.startswith("frame_")]
    assert frames == [f"frame_{i:04d}.png" for i in range(30)]
    assert set(files) == set(frames) | {"reference_transforms.json", "frames_meta.json"}
    assert files == _files(b)  # same bytes twice
    assert read_image(a / "frame_0000.png").shape == (H, W, 3)
    assert json.loads(files["frames_meta.json"])["fps"] == 30.0
    # another seed changes the sensor noise only a little
    c = synthetic.render_case(name, W, H, seed=1)
    f0 = read_image(a / "frame_0007.png").astype(float)
    assert 0 < np.abs(c.frames[7].astype(float) - f0).mean() < 6


@pytest.mark.parametrize("name", synthetic.CASE_NAMES)
def test_reference_transforms_load_as_the_exact_poses(name: str, tmp_path: Path) -> None:
    from sparsevid.data.load import load_scene

    folder = synthetic.write_case(name, tmp_path / name, W, H)
    scene = load_scene(folder / "reference_transforms.json")
    assert len(scene.frames) == 30 and scene.fps == pytest.approx(30.0)
    assert (scene.camera.width, scene.camera.height) == (W, H)
    np.testing.assert_allclose(scene.c2ws(), synthetic.case_trajectory(name), atol=1e-9)


def test_moving_object_moves_a_lot() -> None:
    case = synthetic.render_case("moving_object", W, H)
    masks = case.object_masks
    assert all(m.any() for m in masks)  # the ball is in view in every frame
    centre = [np.argwhere(m).mean(0) for m in masks]  # (row, col)
    # it crosses the view: more than its own width between the first and the last input
    width0 = np.ptp(np.nonzero(masks[0])[1]) + 1
    assert centre[29][1] - centre[0][1] > 0.4 * W and centre[29][1] - centre[0][1] > 2 * width0
    # and bounces: not a straight line between the inputs 0 and 9
    lin = centre[0] + (centre[9] - centre[0]) * 4 / 9
    assert np.abs(centre[4][0] - lin[0]) > 1.0
    # frame-to-frame difference inside the object region, far beyond the (slowly moving) background's
    for i in range(29):
        diff = np.abs(case.frames[i + 1].astype(float) - case.frames[i].astype(float)).mean(-1)
        obj = masks[i] | masks[i + 1]
        assert diff[obj].mean() > 2.5 * diff[~obj].mean() and diff[obj].mean() > 20, i


def test_strong_rotation_pans_with_little_translation() -> None:
    poses = synthetic.case_trajectory("strong_rotation")
    yaw = [np.degrees(np.arctan2(p[0, 2], p[2, 2])) for p in poses]
    steps = np.diff(yaw)
    assert np.all((steps > 1.0) & (steps < 1.5)) and yaw[-1] - yaw[0] > 30
    assert np.linalg.norm(poses[-1][:3, 3] - poses[0][:3, 3]) < 0.3
    case = synthetic.render_case("strong_rotation", W, H)
    assert not any(m.any() for m in case.object_masks)
    assert np.abs(case.frames[29].astype(float) - case.frames[0].astype(float)).mean() > 20


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.spatial.transform import Rotation

    return float(np.degrees((Rotation.from_matrix(a[:3, :3]).inv() * Rotation.from_matrix(b[:3, :3])).magnitude()))


def test_walking_shake_shakes_faster_than_the_inputs_can_follow_and_blurs() -> None:
    from scipy.spatial.transform import Rotation, Slerp

    poses = synthetic.case_trajectory("walking_shake")
    assert 1.5 < np.linalg.norm(poses[29][:3, 3] - poses[0][:3, 3]) < 2.5  # a brisk walk forward
    # the rotation between two inputs is not the smooth turn from one to the other: the shake adds to it
    slerp = Slerp([0, 9], Rotation.from_matrix(np.stack([poses[0][:3, :3], poses[9][:3, :3]])))
    dev = [_angle_deg(np.pad(slerp([i]).as_matrix()[0], ((0, 1), (0, 1))), poses[i]) for i in range(1, 9)]
    assert max(dev) > 0.3
    # the height bounces twice a second: not a straight line between the inputs 0 and 9
    y = poses[:, 1, 3]
    assert np.abs(y[4] - (y[0] + (y[9] - y[0]) * 4 / 9)) > 0.02
    # each frame is the mean over half a frame interval: blurrier than the instant at its centre
    sharp = synthetic.render_case("walking_shake", W, H, noise=0.0, gain_jitter=0.0)
    instant = synthetic.render_case("walking_shake", W, H, noise=0.0, gain_jitter=0.0, motion_blur=False)
    from sparsevid.eval.metrics import laplacian_variance

    ratios = [laplacian_variance(a) / laplacian_variance(b) for a, b in zip(sharp.frames, instant.frames)]
    assert np.mean(ratios) < 0.97 and max(ratios) < 1.0


def test_water_moves_on_its_own_while_the_walls_stay_put() -> None:
    case = synthetic.render_case("water", W, H, noise=0.0, gain_jitter=0.0, supersample=1)
    cam, pose = case.camera, case.c2ws[9]
    # frame 9 rendered with the water frozen as it was at frame 0: the same walls, another sea
    frozen, depth, _ = synthetic.render_objects(cam, pose, (), synthetic.case_texture("water", 0.0))
    frozen = np.clip(np.rint(frozen * 255), 0, 255)
    dirs, o = synthetic._rays(cam, pose)
    floor = np.isclose(o[1] + dirs[..., 1] * depth, 1.0)
    assert 0.4 < floor.mean() < 0.95  # the water fills most of the view
    diff = np.abs(frozen - case.frames[9].astype(float)).mean(-1)
    assert diff[~floor].mean() < 1.0 and diff[floor].mean() > 8.0
    # and the camera moves: forward and sideways, pitched down
    poses = case.c2ws
    assert np.linalg.norm(poses[29][:3, 3] - poses[0][:3, 3]) > 1.5
    assert poses[0][1, 2] > 0.4  # the optical axis points down (y is down)


def test_cli_writes_all_cases(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert synthetic.main(["all", str(tmp_path), "--size", f"{W}x{H}"]) == 0
    for name in synthetic.CASE_NAMES:
        assert (tmp_path / name / "frame_0029.png").is_file()
    assert synthetic.main(["strong_rotation", str(tmp_path / "one"), "--size", "32x24", "--noise", "0"]) == 0
    assert read_image(tmp_path / "one" / "frame_0000.png").shape == (24, 32, 3)
    with pytest.raises(SystemExit):
        synthetic.main(["warp_drive", str(tmp_path)])
    with pytest.raises(SystemExit):
        synthetic.main(["all", str(tmp_path), "--size", "64by48"])


def test_orbit_circles_static_balls_with_parallax_and_occlusion() -> None:
    poses = synthetic.case_trajectory("orbit")
    centre = np.array([synthetic._ORBIT[0], synthetic._ORBIT[1]])
    # the camera keeps its distance to the balls' centre and looks at it, over more than 35 degrees of arc
    xz = poses[:, [0, 2], 3]
    assert np.ptp(np.linalg.norm(xz - centre, axis=1)) < 1e-6
    fwd = poses[:, [0, 2], 2]
    to_c = (centre - xz) / np.linalg.norm(centre - xz, axis=1, keepdims=True)
    assert np.all(np.sum(fwd / np.linalg.norm(fwd, axis=1, keepdims=True) * to_c, 1) > 0.999)
    arc = np.degrees(np.arctan2(xz[-1, 0] - centre[0], centre[1] - xz[-1, 1])
                     - np.arctan2(xz[0, 0] - centre[0], centre[1] - xz[0, 1]))
    assert arc > 35
    case = synthetic.render_case("orbit", W, H, noise=0.0, gain_jitter=0.0)
    assert not any(m.any() for m in case.object_masks)  # the balls are scene, not moving objects
    # the balls cover a good part of every frame, and the near ball hides a different part of the far one
    cam = case.camera
    _, depth, _ = synthetic.render_objects(cam, poses[0], (), synthetic._texture)
    _, depth_b, _ = synthetic.render_objects(cam, poses[0], (), synthetic._texture, synthetic.case_static_objects("orbit"))
    balls = depth_b < depth - 1e-6
    assert 0.1 < balls.mean() < 0.6


def test_dashcam_has_a_bonnet_and_a_clock_fixed_in_the_image() -> None:
    case = synthetic.render_case("dashcam", 160, 120, noise=0.0, gain_jitter=0.0)
    f = [im.astype(float) for im in case.frames]
    bonnet = np.s_[-4:, :]  # under the bonnet's edge at every column
    scene = np.s_[40:90, :]
    # the bonnet does not move; the scene in front of it does, a lot
    assert np.abs(f[29][bonnet] - f[0][bonnet]).mean() < 0.5
    assert np.abs(f[29][scene] - f[0][scene]).mean() > 20
    # the clock (drawn over a black frame): the same from frame 0 to 14, its seconds change at frame 15
    clock = [synthetic._overlay("dashcam", np.zeros((240, 320, 3)), float(i), 30.0)[:24, :200].max(-1)
             for i in (0, 14, 15)]
    assert (clock[0] > 0.5).sum() > 200 and np.array_equal(clock[0], clock[1])
    assert np.abs(clock[2] - clock[1]).sum() > 20
    assert synthetic._overlay("orbit", f[0], 0.0, 30.0) is f[0]  # other cases have nothing fixed in the image
    # fast forward: more than 3 units over the clip, with a road vibration faster than the inputs follow
    poses = case.c2ws
    assert np.linalg.norm(poses[29][:3, 3] - poses[0][:3, 3]) > 3.0
    assert not any(m.any() for m in case.object_masks)
