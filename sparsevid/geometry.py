"""Camera geometry shared by the stages: the OpenGL/OpenCV axis flip, rotation angles, pose
interpolation, the camera extent, and camera distances / nearest cameras.

Conventions: ``c2w`` is a [..., 4, 4] float64 camera-to-world matrix with OpenCV camera axes (x
right, y down, z forward), as everywhere in sparsevid (see :mod:`sparsevid.data.scene`).

Nearest cameras: :func:`camera_distances` is the one metric, centre distance plus angle, each in a
unit the caller gives. Its three users keep the units (and angle) they were measured with, because
other units pick other views and so change their outputs:

* the reprojection fixer (the default pipeline): the references' own median neighbour spacing and
  rotation, floored (:func:`reference_spacing`; the defaults), so its ``exact_tolerance`` is
  scale-free;
* the progressive updates (``fixer/progressive.nearest_cameras``): the training cameras' median
  neighbour spacing (:func:`median_neighbor_spacing`) and 5 degrees;
* the Difix-ref fixer (``fixer/difix/fixer.nearest_refs``): the median distance between the
  references (:func:`median_pair_spacing`) and one radian of the angle between the optical axes
  (Difix's reference choice ignores roll).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial.transform import Rotation

if TYPE_CHECKING:
    import torch

#: OpenCV <-> OpenGL camera axes (its own inverse): c2w_gl = c2w_cv @ GL_FLIP
GL_FLIP = np.diag([1.0, -1.0, -1.0, 1.0])


def opencv_to_opengl(c2w: np.ndarray) -> np.ndarray:
    """[..., 4, 4] camera-to-world with OpenCV camera axes -> OpenGL camera axes (and back: the map is
    its own inverse), float64."""
    return np.asarray(c2w, np.float64) @ GL_FLIP


#: [..., 4, 4] camera-to-world with OpenGL camera axes -> OpenCV axes (the same map as :func:`opencv_to_opengl`)
opengl_to_opencv = opencv_to_opengl


# ---------------------------------------------------------------------------------------------
# rotations and poses
# ---------------------------------------------------------------------------------------------
#: how far from orthonormal (max |R R^T - I|) a given rotation may be and still be taken as one (made exact):
#: numbers written with 5 or 6 decimals, or as float32, are within it; a scaled or sheared matrix is not
ROTATION_TOLERANCE = 1e-3


def rotation_problem(r: np.ndarray, tol: float = ROTATION_TOLERANCE) -> str | None:
    """What keeps the [3, 3] matrix ``r`` from being a rotation (None: nothing, within ``tol``): "a mirror" for an
    orthonormal matrix of determinant -1 (one axis flipped, e.g. a half-done OpenGL/OpenCV conversion), or "not
    orthonormal" (scaled, sheared, zero)."""
    r = np.asarray(r, np.float64)
    if not np.all(np.isfinite(r)) or np.abs(r @ r.T - np.eye(3)).max() > tol:
        return "not orthonormal (scaled, sheared or zero)"
    if np.linalg.det(r) < 0:
        return "a mirror (determinant -1: one axis flipped)"
    return None


def fraction_in_front(c2ws: np.ndarray, points: np.ndarray) -> np.ndarray:
    """[N] the fraction of ``points`` [P, 3] in front of each camera of ``c2ws`` [N, 4, 4] (OpenCV axes: camera z
    > 0)."""
    c2ws = np.asarray(c2ws, np.float64)
    rel = np.asarray(points, np.float64)[None] - c2ws[:, None, :3, 3]  # [N, P, 3]
    z = np.einsum("npk,nk->np", rel, c2ws[:, :3, 2])  # the camera's z axis is the c2w's third column
    return (z > 0).mean(axis=1)


def nearest_rotation(r: np.ndarray) -> np.ndarray:
    """The rotation nearest the [3, 3] matrix ``r`` in the Frobenius norm (``U V^T`` of its SVD, with the
    determinant made +1): rounding in a file's numbers taken out."""
    u, _, vt = np.linalg.svd(np.asarray(r, np.float64))
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    return u @ np.diag([1.0, 1.0, d]) @ vt
def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees of ``R_a^T R_b`` for each pose pair (leading dimensions broadcast).

    Args:
        a, b: [..., 4, 4] poses or [..., 3, 3] rotations.

    Returns:
        [...] float64 angles in [0, 180].
    """
    ra = np.asarray(a, np.float64)[..., :3, :3]
    rb = np.asarray(b, np.float64)[..., :3, :3]
    rel = np.swapaxes(ra, -1, -2) @ rb
    cos = (np.trace(rel, axis1=-2, axis2=-1) - 1.0) / 2.0
    axis = np.stack([rel[..., 2, 1] - rel[..., 1, 2], rel[..., 0, 2] - rel[..., 2, 0],
                     rel[..., 1, 0] - rel[..., 0, 1]], -1)
    sin = np.linalg.norm(axis, axis=-1) / 2.0
    return np.degrees(np.arctan2(sin, cos))  # accurate near 0 deg, unlike arccos


def _rotation_angle_rad(a: "torch.Tensor", b: "torch.Tensor") -> "torch.Tensor":
    """Angle in radians of ``R_a^T R_b`` (float64, leading dimensions broadcast; arccos of the trace)."""
    rel = a[..., :3, :3].double().transpose(-1, -2) @ b[..., :3, :3].double()
    cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return cos.arccos()


def interpolate_pose(c2w_a: np.ndarray, c2w_b: np.ndarray, s: float | np.ndarray) -> np.ndarray:
    """Pose between two cameras: rotation slerp, position lerp.

    Args:
        c2w_a, c2w_b: [4, 4] camera-to-world.
        s: scalar or [S] fractions (0 -> a, 1 -> b; values outside [0, 1] extrapolate).

    Returns:
        [4, 4] for a scalar ``s``, else [S, 4, 4] float64.
    """
    a = np.asarray(c2w_a, dtype=np.float64)
    b = np.asarray(c2w_b, dtype=np.float64)
    ss = np.atleast_1d(np.asarray(s, dtype=np.float64))
    ra = Rotation.from_matrix(a[:3, :3])
    rel = (Rotation.from_matrix(b[:3, :3]) * ra.inv()).as_rotvec()
    out = np.tile(np.eye(4), (len(ss), 1, 1))
    out[:, :3, :3] = (Rotation.from_rotvec(ss[:, None] * rel[None]) * ra).as_matrix()
    out[:, :3, 3] = (1 - ss)[:, None] * a[:3, 3] + ss[:, None] * b[:3, 3]
    out[ss == 0] = a
    out[ss == 1] = b
    return out[0] if np.ndim(s) == 0 else out


def camera_extent(c2ws: np.ndarray) -> float:
    """gsplat's scene scale: 1.1 x the largest distance of a camera centre from their mean."""
    centres = c2ws[:, :3, 3]
    return float(1.1 * np.linalg.norm(centres - centres.mean(0), axis=1).max())


# ---------------------------------------------------------------------------------------------
# camera distances and nearest cameras
# ---------------------------------------------------------------------------------------------
def median_neighbor_spacing(c2ws: np.ndarray) -> float:
    """Median distance from each camera centre to its nearest other camera (0 for one camera)."""
    c = np.asarray(c2ws, dtype=np.float64)[:, :3, 3]
    if len(c) < 2:
        return 0.0
    d = np.linalg.norm(c[:, None] - c[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(1)))


def camera_distances(c2ws: "torch.Tensor", ref_c2ws: "torch.Tensor", position_unit: float | None = None,
                     rotation_unit: float | None = None, angle: str = "rotation") -> "torch.Tensor":
    """Distance from every camera to every reference camera, in float64::

        d[b, r] = |centre_b - centre_r| / position_unit + angle(b, r) / rotation_unit

    Args:
        c2ws: [B, 4, 4] camera-to-world (OpenCV axes), any float dtype.
        ref_c2ws: [R, 4, 4] reference cameras, on the device of ``c2ws``.
        position_unit: the world length that counts 1; None = the references' median neighbour
            spacing (floored, :func:`reference_spacing`).
        rotation_unit: the angle in radians that counts 1; None = the references' median
            neighbour rotation (floored at 0.5 deg, :func:`reference_spacing`).
        angle: ``"rotation"``: the angle of the relative rotation ``R_r^T R_b`` (roll included);
            ``"axis"``: the angle between the optical axes (z columns; roll ignored).

    Returns:
        [B, R] float64 on the device of ``c2ws``.

    Example:
        >>> d = camera_distances(novel_c2ws, input_c2ws)          # the reprojection fixer's units
        >>> nearest = d.argmin(1)                                  # [B] index of the nearest input
    """
    import torch

    if angle not in ("rotation", "axis"):
        raise ValueError(f"angle must be 'rotation' or 'axis', got {angle!r}")
    if position_unit is None or rotation_unit is None:
        t_scale, r_scale = reference_spacing(ref_c2ws)
        position_unit = t_scale if position_unit is None else position_unit
        rotation_unit = r_scale if rotation_unit is None else rotation_unit
    dt = torch.cdist(c2ws[:, :3, 3].double(), ref_c2ws[:, :3, 3].double())
    if angle == "rotation":
        ang = _rotation_angle_rad(ref_c2ws[None], c2ws[:, None])                  # [B, R] rad
    else:
        z = torch.nn.functional.normalize(c2ws[:, :3, 2].double(), dim=-1)
        rz = torch.nn.functional.normalize(ref_c2ws[:, :3, 2].double(), dim=-1)
        ang = torch.arccos((z @ rz.T).clamp(-1, 1))
    return dt / position_unit + ang / rotation_unit


def reference_spacing(ref_c2ws: torch.Tensor) -> tuple[float, float]:
    """(median nearest-neighbour centre distance, median nearest-neighbour rotation angle in rad)
    of the reference cameras, floored to stay positive."""
    import torch

    c = ref_c2ws[:, :3, 3].double()
    r = ref_c2ws.shape[0]
    if r < 2:
        return 1.0, float(np.deg2rad(5.0))
    d = torch.cdist(c, c) + torch.eye(r, dtype=c.dtype, device=c.device) * 1e30
    eye = torch.eye(r, dtype=c.dtype, device=c.device)
    ang = _rotation_angle_rad(ref_c2ws[None], ref_c2ws[:, None]) + eye * 1e30
    t = float(d.min(1).values.median())
    a = float(ang.min(1).values.median())
    scene = float(torch.linalg.norm(c - c.mean(0), dim=-1).max()) + 1e-9
    return max(t, 1e-3 * scene, 1e-9), max(a, float(np.deg2rad(0.5)))


def median_pair_spacing(ref_c2ws: torch.Tensor) -> float:
    """Median distance between the centres of distinct reference cameras (the lower middle value),
    or 1 when there is no pair or it is 0."""
    import torch

    rc = ref_c2ws[:, :3, 3].double()
    pair = torch.cdist(rc, rc)
    off = pair[~torch.eye(len(rc), dtype=torch.bool, device=pair.device)]
    return float(off.median()) if off.numel() and float(off.median()) > 0 else 1.0
