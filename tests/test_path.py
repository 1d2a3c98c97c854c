"""Camera path: frame count and timing, exact knots, smoothness, extrapolation, pose interpolation."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sparsevid.data.camera import Camera
from sparsevid.data.synthetic import trajectory
from sparsevid.errors import SparsevidError
from sparsevid.path import CameraPath, PathConfig, interpolate_pose, source_index_of
from sparsevid.poses.undistort import Undistorter
from sparsevid.data.timebase import fps_fraction

KEYS = [0, 9, 19, 29]
TRUE = trajectory(30)
K = np.array([[500.0, 0, 424], [0, 500.0, 240], [0, 0, 1]])


def _path(**kw) -> CameraPath:
    return CameraPath.from_indices(KEYS, 30, TRUE[KEYS], K, **kw)


def test_default_is_30_frames_through_the_inputs_exactly():
    f = _path().frames(PathConfig(), scene_fps=30)
    assert len(f) == 30 and f.c2ws.shape == (30, 4, 4) and f.Ks.shape == (30, 3, 3)
    assert f.times[9] == Fraction(9, 30)
    assert list(np.nonzero(f.is_input)[0]) == KEYS
    for k in KEYS:
        assert np.array_equal(f.c2ws[k], TRUE[k])  # bit-exact
    np.testing.assert_allclose(f.Ks, np.broadcast_to(K, (30, 3, 3)))
    # close to the true trajectory in between: the slow sway (x) and forward walk (z) are followed;
    # the fast 0.02-amplitude bob in y (period ~12 frames) cannot be seen by 4 knots
    err = np.abs(f.c2ws[:, :3, 3] - TRUE[:, :3, 3])
    assert err[:, [0, 2]].max() < 0.01 and err[:, 1].max() < 0.045


def test_rotations_orthonormal_and_path_smooth():
    f = _path().frames(PathConfig(num_frames=30))
    R = f.c2ws[:, :3, :3]
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    pos = f.c2ws[:, :3, 3]
    step = np.linalg.norm(np.diff(pos, axis=0), axis=1).mean()
    second = np.linalg.norm(np.diff(pos, 2, axis=0), axis=1)
    assert second.max() < 0.25 * step  # no kinks at the knots
    rv = Rotation.from_matrix(R).as_rotvec()
    assert np.abs(np.diff(rv, 2, axis=0)).max() < 1e-3


def test_kink_detector_would_fire_on_a_piecewise_linear_path():
    """The smoothness bound above is meaningful: a zig-zag through the knots breaks it."""
    zig = TRUE[KEYS].copy()
    zig[1, 0, 3] += 0.3
    pos = CameraPath.from_indices(KEYS, 30, zig).frames().c2ws[:, :3, 3]
    lin = np.stack([np.interp(np.arange(30), KEYS, zig[:, i, 3]) for i in range(3)], -1)
    step = np.linalg.norm(np.diff(lin, axis=0), axis=1).mean()
    assert np.linalg.norm(np.diff(lin, 2, axis=0), axis=1).max() > 0.25 * step
    assert np.linalg.norm(np.diff(pos, 2, axis=0), axis=1).max() < np.linalg.norm(np.diff(lin, 2, axis=0), axis=1).max()


def test_ntsc_rate_is_exact():
    assert fps_fraction(29.97) == Fraction(30000, 1001)
    assert fps_fraction(23.976) == Fraction(24000, 1001)
    assert fps_fraction(59.94) == Fraction(60000, 1001)
    assert fps_fraction(25) == 25 and fps_fraction(12.5) == Fraction(25, 2)
    assert fps_fraction("30000/1001") == Fraction(30000, 1001)
    cfg = PathConfig()
    times = cfg.frame_times(29.97, 29)
    assert len(times) == 30 and times[29] == Fraction(29 * 1001, 30000)
    # inputs of a 29.97 fps video at frame indices land exactly on output frames
    p = CameraPath.from_indices(KEYS, 29.97, TRUE[KEYS])
    f = p.frames(cfg, scene_fps=29.97)
    assert list(np.nonzero(f.is_input)[0]) == KEYS
    assert f.fps == Fraction(30000, 1001)
    assert cfg.frame_count(30, 29) == 30
    assert PathConfig(fps=29.97, duration=1.0).frame_count(30, 29) == 30
    assert PathConfig(fps=60).frame_count(30, 29) == 60


def test_frame_count_precedence():
    assert PathConfig(num_frames=12, duration=5.0).frame_count(30, 29) == 12
    assert PathConfig(duration=2.0).frame_count(30, 29) == 60
    assert PathConfig(fps=15, duration=2.0).frame_count(30, 29) == 30
    assert PathConfig().frame_count(30, 19) == 20
    with pytest.raises(SparsevidError):
        PathConfig(num_frames=0).frame_count(30, 29)


def test_other_output_rate_hits_inputs_where_times_match():
    f = _path().frames(PathConfig(fps=60))
    assert len(f) == 60
    assert list(np.nonzero(f.is_input)[0]) == [0, 18, 38, 58]
    assert np.array_equal(f.c2ws[38], TRUE[19])


def test_path_frames_carry_the_exact_source_index():
    """60 fps out of a 30 fps source: even frames show source frame k / 2, odd ones fall between."""
    f = _path().frames(PathConfig(fps=60))
    assert f.source_index_exact == [k // 2 if k % 2 == 0 else None for k in range(60)]
    assert PathConfig(fps=60).frame_positions(30, 29)[19] == Fraction(19, 2)
    assert source_index_of(Fraction(38, 2)) == 19 and source_index_of(Fraction(19, 2)) is None
    # 29.97 fps source at 29.97 fps: every output frame is a source frame
    g = CameraPath.from_indices(KEYS, Fraction(30000, 1001), TRUE[KEYS]).frames(PathConfig(), Fraction(30000, 1001))
    assert g.source_index_exact == list(range(30))
    assert [k for k in range(30) if g.is_input[k]] == [k for k in KEYS if g.source_index_exact[k] in KEYS]


def test_extrapolation_hold_and_linear():
    p = CameraPath.from_indices([5, 9, 19, 24], 30, TRUE[[5, 9, 19, 24]], extrapolation="linear")
    f = p.frames(PathConfig(num_frames=30))
    assert np.array_equal(f.c2ws[5], TRUE[5]) and np.array_equal(f.c2ws[24], TRUE[24])
    # linear: continues the walk forward (+z) beyond the last input, and backwards before the first
    assert f.c2ws[29, 2, 3] > f.c2ws[24, 2, 3] > f.c2ws[19, 2, 3]
    assert f.c2ws[0, 2, 3] < f.c2ws[5, 2, 3]
    assert np.abs(f.c2ws[29, :3, 3] - TRUE[29, :3, 3]).max() < 0.05
    R = f.c2ws[:, :3, :3]
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    h = CameraPath.from_indices([5, 9, 19, 24], 30, TRUE[[5, 9, 19, 24]], extrapolation="hold")
    fh = h.frames(PathConfig(num_frames=30))
    assert all(np.array_equal(fh.c2ws[i], TRUE[5]) for i in range(5))
    assert all(np.array_equal(fh.c2ws[i], TRUE[24]) for i in range(24, 30))


def test_linear_extrapolation_rotation_is_bounded():
    spin = np.stack([np.eye(4)] * 3)
    for i, a in enumerate([0.0, 0.5, 1.0]):
        spin[i, :3, :3] = Rotation.from_euler("y", a).as_matrix()
    p = CameraPath([0.0, 0.1, 0.2], spin, max_extrapolation_deg=10.0)
    c2w, _ = p.at(np.array([10.0]))
    extra = Rotation.from_matrix(c2w[0, :3, :3]) * Rotation.from_matrix(spin[-1, :3, :3]).inv()
    assert np.degrees(extra.magnitude()) == pytest.approx(10.0, abs=1e-6)


def test_few_knots_and_errors():
    one = CameraPath([0.0], TRUE[:1])
    c, k = one.at([0.0, 0.5])
    assert np.array_equal(c[1], TRUE[0])
    two = CameraPath.from_indices([0, 29], 30, TRUE[[0, 29]])
    c, _ = two.at(np.linspace(0, 29 / 30, 5))
    np.testing.assert_allclose(c[2, :3, 3], (TRUE[0, :3, 3] + TRUE[29, :3, 3]) / 2, atol=1e-12)
    with pytest.raises(SparsevidError):
        CameraPath([0.0, 0.0], TRUE[:2])
    with pytest.raises(SparsevidError):
        CameraPath([0.0, 1.0], TRUE[:3])


def test_intrinsics_are_interpolated():
    Ks = np.stack([K, K * [[2, 1, 1], [1, 2, 1], [1, 1, 1]]])
    p = CameraPath([0.0, 1.0], TRUE[:2], Ks)
    _, k = p.at([0.5, 2.0])
    assert k[0, 0, 0] == pytest.approx(750.0) and k[1, 0, 0] == pytest.approx(1000.0)


def test_interpolate_pose():
    a, b = TRUE[0], TRUE[29]
    assert np.array_equal(interpolate_pose(a, b, 0.0), a) and np.array_equal(interpolate_pose(a, b, 1.0), b)
    m = interpolate_pose(a, b, 0.5)
    np.testing.assert_allclose(m[:3, 3], (a[:3, 3] + b[:3, 3]) / 2)
    ra, rb, rm = (Rotation.from_matrix(x[:3, :3]) for x in (a, b, m))
    assert (rm * ra.inv()).magnitude() == pytest.approx((rb * rm.inv()).magnitude(), rel=1e-9)
    many = interpolate_pose(a, b, np.linspace(0, 1, 7))
    assert many.shape == (7, 4, 4)
    np.testing.assert_allclose(many[..., :3, :3] @ np.swapaxes(many[..., :3, :3], -1, -2),
                               np.broadcast_to(np.eye(3), (7, 3, 3)), atol=1e-12)


def test_path_frames_project_through_the_input_lens_round_trip():
    """The lens round trip at the path's output resolution (the renderer's last step)."""
    cam = Camera("OPENCV", 848, 480, (501.6, 501.6, 424.0, 240.0, -0.1403, 0.0, 0.0, 0.0))
    und = Undistorter.for_camera(cam, scale=0.25)
    u, v = np.meshgrid(np.linspace(0, und.size[0], 25), np.linspace(0, und.size[1], 25))
    uv = np.stack([u, v], -1).reshape(-1, 2)
    assert np.abs(und.distort_points(und.undistort_points(uv)) - uv).max() < 0.01
