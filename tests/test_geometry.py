"""sparsevid.geometry.camera_distances: the one nearest-camera metric (and its users' units)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from sparsevid.geometry import camera_distances, median_neighbor_spacing, median_pair_spacing, reference_spacing


def _poses(n: int, seed: int, spread: float = 0.3) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    m = np.tile(np.eye(4), (n, 1, 1))
    m[:, :3, :3] = Rotation.from_rotvec(rng.normal(0, spread, (n, 3))).as_matrix()
    m[:, :3, 3] = rng.normal(0, 1, (n, 3))
    return torch.from_numpy(m)


def _reference(c2ws: np.ndarray, refs: np.ndarray, pos_unit: float, rot_unit: float, angle: str) -> np.ndarray:
    """The metric written out independently in numpy (scipy for the rotation angle)."""
    dt = np.linalg.norm(c2ws[:, None, :3, 3] - refs[None, :, :3, 3], axis=-1)
    if angle == "rotation":
        ang = np.array([[Rotation.from_matrix(r[:3, :3].T @ c[:3, :3]).magnitude() for r in refs] for c in c2ws])
    else:
        z, rz = c2ws[:, :3, 2], refs[:, :3, 2]
        ang = np.arccos(np.clip(z @ rz.T / np.outer(np.linalg.norm(z, axis=1), np.linalg.norm(rz, axis=1)), -1, 1))
    return dt / pos_unit + ang / rot_unit


@pytest.mark.parametrize("angle", ["rotation", "axis"])
def test_matches_the_formula(angle):
    cams, refs = _poses(7, 0), _poses(4, 1)
    d = camera_distances(cams, refs, position_unit=0.7, rotation_unit=0.2, angle=angle)
    assert d.shape == (7, 4) and d.dtype == torch.float64
    np.testing.assert_allclose(d.numpy(), _reference(cams.numpy(), refs.numpy(), 0.7, 0.2, angle), atol=1e-6)


def test_zero_at_the_reference_itself_and_float32_input():
    refs = _poses(5, 2)
    d = camera_distances(refs.float(), refs)
    assert d.dtype == torch.float64 and torch.allclose(d.diagonal(), torch.zeros(5, dtype=torch.float64), atol=1e-3)
    assert (d + torch.eye(5, dtype=torch.float64) * 1e9).min(1).values.gt(0.01).all()


def test_units_scale_each_term():
    cams, refs = _poses(3, 3), _poses(4, 4)
    only_t = camera_distances(cams, refs, position_unit=1.0, rotation_unit=1e30)
    only_r = camera_distances(cams, refs, position_unit=1e30, rotation_unit=1.0)
    both = camera_distances(cams, refs, position_unit=2.0, rotation_unit=0.5)
    torch.testing.assert_close(both, only_t / 2.0 + only_r / 0.5)


def test_default_units_are_the_references_spacing():
    cams, refs = _poses(6, 5), _poses(4, 6)
    t, r = reference_spacing(refs)
    assert torch.equal(camera_distances(cams, refs), camera_distances(cams, refs, position_unit=t, rotation_unit=r))
    assert torch.equal(camera_distances(cams, refs, position_unit=2.0),
                       camera_distances(cams, refs, position_unit=2.0, rotation_unit=r))


def test_axis_angle_ignores_roll_and_rotation_angle_does_not():
    ref = torch.eye(4, dtype=torch.float64)[None]
    rolled = torch.eye(4, dtype=torch.float64)
    rolled[:3, :3] = torch.from_numpy(Rotation.from_rotvec([0, 0, 0.3]).as_matrix())  # about the optical axis
    assert float(camera_distances(rolled[None], ref, 1.0, 1.0, angle="axis")) == pytest.approx(0.0, abs=1e-7)
    assert float(camera_distances(rolled[None], ref, 1.0, 1.0, angle="rotation")) == pytest.approx(0.3, abs=1e-7)
    with pytest.raises(ValueError):
        camera_distances(rolled[None], ref, angle="yaw")


def test_unit_helpers():
    c = torch.eye(4, dtype=torch.float64).repeat(4, 1, 1)
    c[:, 0, 3] = torch.tensor([0.0, 1.0, 3.0, 6.0])  # centres on a line: neighbour gaps 1, 1, 2, 3
    assert median_neighbor_spacing(c.numpy()) == 1.5  # numpy median of the nearest-neighbour distances
    assert reference_spacing(c)[0] == 1.0  # torch's lower median, floored
    assert median_pair_spacing(c) == 3.0  # pairs 1, 3, 6, 2, 5, 3: lower median
    assert median_pair_spacing(c[:1]) == 1.0 and median_neighbor_spacing(c[:1].numpy()) == 0.0


def test_the_users_pick_the_nearest_camera():
    from sparsevid.data import synthetic
    from sparsevid.fixer.difix.fixer import nearest_refs
    from sparsevid.fixer.progressive import nearest_cameras

    walk = synthetic.trajectory(30)
    inputs = [0, 9, 19, 29]
    near = nearest_cameras(walk[inputs], walk)
    assert near[[0, 3, 8, 10, 18, 20, 29]].tolist() == [0, 0, 1, 1, 2, 2, 3]
    t = torch.from_numpy(walk)
    picked = nearest_refs(t[[1, 27]], t[inputs], 2)
    assert picked[:, 0].tolist() == [0, 3] and picked.shape == (2, 2)
    assert camera_distances(t[[1, 27]], t[inputs]).argmin(1).tolist() == [0, 3]


def test_rotation_problem_and_nearest_rotation():
    from sparsevid.geometry import nearest_rotation, rotation_problem

    r = Rotation.from_euler("xyz", [0.3, -0.2, 1.1]).as_matrix()
    assert rotation_problem(r) is None and rotation_problem(np.round(r, 5)) is None
    assert rotation_problem(r @ np.diag([-1, 1, 1])).startswith("a mirror")
    assert rotation_problem(1.5 * r).startswith("not orthonormal") and rotation_problem(np.zeros((3, 3)))
    assert rotation_problem(np.full((3, 3), np.nan)).startswith("not orthonormal")
    near = nearest_rotation(np.round(r, 4))
    np.testing.assert_allclose(near @ near.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(near) == pytest.approx(1.0) and np.abs(near - r).max() < 1e-4
    np.testing.assert_allclose(nearest_rotation(r), r, atol=1e-12)


def test_fraction_in_front():
    from sparsevid.geometry import fraction_in_front

    c2w = np.eye(4)
    pts = np.array([[0, 0, 1.0], [0, 0, 2.0], [0, 0, -1.0], [1, 1, 0.5]])
    assert fraction_in_front(c2w[None], pts).tolist() == [0.75]
    turned = np.diag([1.0, -1.0, -1.0, 1.0])
    assert fraction_in_front(turned[None], pts).tolist() == [0.25]
