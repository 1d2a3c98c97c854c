"""Similarity alignment of camera trajectories and pose-error metrics (pure numpy).

Poses are [N, 4, 4] camera-to-world matrices (any consistent camera axes). A similarity
``x -> s * R @ x + t`` maps the source world onto the destination world; applied to a pose it
gives ``c2w' = [[R @ R_c2w, s * R @ c_src + t], [0, 1]]`` (rotation and centre, no scaling of
the camera frame itself).
"""
from __future__ import annotations

import numpy as np

from sparsevid.geometry import nearest_rotation, rotation_angle_deg

#: the rotation error between pose pairs (see :func:`sparsevid.geometry.rotation_angle_deg`)
rotation_errors_deg = rotation_angle_deg


def umeyama_sim3(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ~ s * R @ src + t`` (Umeyama 1991).

    Args:
        src: [N, 3] points, N >= 3 not all collinear for a unique rotation.
        dst: [N, 3] corresponding points.

    Returns:
        (s, R [3, 3], t [3]). With a degenerate ``src`` (all points equal) ``s`` is 1.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 1:
        raise ValueError(f"need two [N, 3] arrays of the same shape, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = float((xs ** 2).sum() / len(src))
    cov = xd.T @ xs / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2] = -1.0
    r = u @ np.diag(d) @ vt
    s = float((sig * d).sum() / var_s) if var_s > 1e-300 else 1.0
    t = mu_d - s * r @ mu_s
    return s, r, t


def similarity_from_poses(c2w_src: np.ndarray, c2w_dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) taking the ``c2w_src`` trajectory onto ``c2w_dst``, from camera
    centres AND camera orientations.

    Umeyama on centres alone is ill-posed when the centres are (nearly) collinear, as in a
    forward walk or a tiny baseline: any rotation about the line fits. Here the rotation
    maximises ``trace(R^T M)`` with ``M = sum_i R_dst_i R_src_i^T + n * H``, where ``H`` is the
    cross-covariance of the centred camera centres each normalised by its RMS spread; both
    terms are sums of ``n`` unit-scale outer products, so neither dominates by units. The
    scale and translation then follow in closed form from the centres.

    Args:
        c2w_src: [N, 4, 4] source poses.
        c2w_dst: [N, 4, 4] destination poses (same cameras, same order).

    Returns:
        (s, R [3, 3], t [3]).
    """
    a = np.asarray(c2w_src, np.float64)
    b = np.asarray(c2w_dst, np.float64)
    if a.shape != b.shape or a.ndim != 3 or a.shape[1:] != (4, 4) or len(a) < 1:
        raise ValueError(f"need two [N, 4, 4] arrays of the same shape, got {a.shape} and {b.shape}")
    n = len(a)
    cs, cd = a[:, :3, 3], b[:, :3, 3]
    xs, xd = cs - cs.mean(0), cd - cd.mean(0)
    rms_s = float(np.sqrt((xs ** 2).sum() / n))
    rms_d = float(np.sqrt((xd ** 2).sum() / n))
    m = np.einsum("nij,nkj->ik", b[:, :3, :3], a[:, :3, :3])  # sum_i R_dst_i @ R_src_i^T
    if rms_s > 1e-12 and rms_d > 1e-12:
        m = m + (xd / rms_d).T @ (xs / rms_s)  # sum of n outer products of ~unit vectors
    r = nearest_rotation(m)
    if rms_s > 1e-12:
        s = float(np.einsum("ni,ni->", xd, xs @ r.T) / (xs ** 2).sum())
        if s <= 0:  # centres disagree completely: fall back to matching the spreads
            s = rms_d / rms_s
    else:
        s = 1.0
    t = cd.mean(0) - s * r @ cs.mean(0)
    return s, r, t


def apply_similarity(c2w: np.ndarray, s: float, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """[N, 4, 4] poses moved by ``x -> s R x + t`` (camera orientation rotated, centre mapped)."""
    c2w = np.asarray(c2w, np.float64)
    out = c2w.copy()
    out[:, :3, :3] = r @ c2w[:, :3, :3]
    out[:, :3, 3] = s * c2w[:, :3, 3] @ r.T + t
    return out


def align_poses(c2w_src: np.ndarray, c2w_dst: np.ndarray) -> np.ndarray:
    """``c2w_src`` [N, 4, 4] moved into ``c2w_dst``'s world by :func:`similarity_from_poses`.

    Returns:
        aligned [N, 4, 4] float64 poses, comparable with ``c2w_dst`` pose by pose.
    """
    s, r, t = similarity_from_poses(c2w_src, c2w_dst)
    return apply_similarity(c2w_src, s, r, t)


def relative_rotations_deg(c2w: np.ndarray) -> np.ndarray:
    """[N-1] angles in degrees between consecutive poses of ``c2w`` [N, 4, 4]."""
    c2w = np.asarray(c2w, np.float64)
    return rotation_angle_deg(c2w[:-1], c2w[1:])


def translation_direction_errors_deg(c2w_est: np.ndarray, c2w_ref: np.ndarray) -> np.ndarray:
    """[N-1] angles in degrees between the directions of consecutive camera displacements
    (``c_{i+1} - c_i``) of two trajectories already in one world (e.g. after :func:`align_poses`)."""
    de = np.diff(np.asarray(c2w_est, np.float64)[:, :3, 3], axis=0)
    dr = np.diff(np.asarray(c2w_ref, np.float64)[:, :3, 3], axis=0)
    ne = np.linalg.norm(de, axis=1)
    nr = np.linalg.norm(dr, axis=1)
    cos = np.einsum("ni,ni->n", de, dr) / np.maximum(ne * nr, 1e-300)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
