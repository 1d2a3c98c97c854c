"""Camera geometry shared by the stages: the OpenGL/OpenCV axis flip, rotation angles, pose
interpolation, the camera extent, and camera distances / nearest cameras.

Conventions: ``c2w`` is a [..., 4, 4] float64 camera-to-world matrix with OpenCV camera axes (x
right, y down, z forward), as everywhere in sparsevid (see :mod:`sparsevid.data.scene`).

Nearest cameras: three measured choices live here side by side, one per user, and each keeps its
own numbers (a common metric would change which views are picked, and so the outputs):

* :func:`nearest_cameras` (progressive updates): centre distance / median neighbour spacing +
  rotation / 5 degrees, numpy;
* :func:`camera_distances` (the reprojection fixer): centre distance / median neighbour spacing +
  rotation / median neighbour rotation, each spacing floored, torch;
* :func:`nearest_refs` (Difix-ref): centre distance / median pairwise spacing + optical-axis angle,
  torch.
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


def nearest_cameras(train_c2ws: np.ndarray, target_c2ws: np.ndarray) -> np.ndarray:
    """[M] index of the training camera nearest each target (the progressive updates' choice): centre
    distance in units of the training spacing + rotation in units of 5 degrees."""
    tr = np.asarray(train_c2ws, dtype=np.float64)
    tg = np.asarray(target_c2ws, dtype=np.float64)
    spacing = median_neighbor_spacing(tr)
    scale = spacing if spacing > 0 else 1.0
    dt = np.linalg.norm(tg[:, None, :3, 3] - tr[None, :, :3, 3], axis=-1) / scale
    dr = rotation_angle_deg(tr[None, :, :3, :3], tg[:, None, :3, :3]) / 5.0
    return np.argmin(dt + dr, axis=1)


def camera_distances(c2ws: torch.Tensor, ref_c2ws: torch.Tensor, rot_weight: float = 1.0) -> torch.Tensor:
    """[B, R] view distance (the reprojection fixer's): camera-centre distance in units of the
    references' median spacing plus ``rot_weight`` x rotation angle in units of the references'
    median neighbour rotation (each spacing floored, so a static camera does not divide by zero)."""
    import torch

    c = c2ws[:, :3, 3].double()
    cr = ref_c2ws[:, :3, 3].double()
    dt = torch.cdist(c, cr)
    ang = _rotation_angle_rad(ref_c2ws[None], c2ws[:, None])                      # [B, R] rad
    t_scale, r_scale = reference_spacing(ref_c2ws)
    return dt / t_scale + rot_weight * ang / r_scale


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


def nearest_refs(c2ws: torch.Tensor, ref_c2ws: torch.Tensor, k: int, angle_weight: float = 1.0) -> torch.Tensor:
    """Indices [B, k] of the ``k`` references closest to each camera (the Difix fixers' choice).

    Distance = camera-centre distance / (median distance between the references, or 1) +
    ``angle_weight`` * angle between the optical axes (radians). ``c2ws`` [B, 4, 4], ``ref_c2ws`` [R, 4, 4].
    """
    import torch

    k = min(k, ref_c2ws.shape[0])
    c, rc = c2ws[:, :3, 3].double(), ref_c2ws[:, :3, 3].double()
    z, rz = c2ws[:, :3, 2].double(), ref_c2ws[:, :3, 2].double()
    d = torch.cdist(c, rc)
    pair = torch.cdist(rc, rc)
    off = pair[~torch.eye(len(rc), dtype=torch.bool, device=pair.device)]
    scale = float(off.median()) if off.numel() and float(off.median()) > 0 else 1.0
    cos = (torch.nn.functional.normalize(z, dim=-1) @ torch.nn.functional.normalize(rz, dim=-1).T).clamp(-1, 1)
    score = d / scale + angle_weight * torch.arccos(cos)
    return score.topk(k, dim=1, largest=False).indices
