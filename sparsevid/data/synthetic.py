"""Tiny synthetic scenes with known geometry, for tests and the CPU benchmark harness.

The world is a textured "corridor": a floor (y = +1), a back wall (z = 8) and two side walls
(x = +-2.5), each with a smooth procedural colour texture. A camera walks forward along +z
with a slight yaw, like a hand-held forward-walking clip. Images and depth maps are exact
(analytic ray casting), so stages can be checked against ground truth.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sparsevid.data.camera import Camera
from sparsevid.data.scene import Frame, Scene

# planes as (normal axis, offset, sign of facing) : points p with p[axis] == offset
_PLANES = [(1, 1.0), (2, 8.0), (0, -2.5), (0, 2.5), (1, -2.0)]


def _texture(p: np.ndarray, axis: int) -> np.ndarray:
    """Procedural RGB in [0, 1] for world points p [..., 3] on a plane orthogonal to ``axis``."""
    uv = np.delete(p, axis, axis=-1)
    u, v = uv[..., 0], uv[..., 1]
    r = 0.5 + 0.25 * np.sin(3.1 * u + 0.7 * axis) + 0.2 * np.sin(7.3 * v + 1.3 * u)
    g = 0.5 + 0.25 * np.cos(2.3 * v - 0.4 * axis) + 0.2 * np.sin(5.1 * u * 0.8 + 2.0 * v)
    b = 0.5 + 0.3 * np.sin(1.7 * u + 2.9 * v + axis)
    checker = ((np.floor(u * 2) + np.floor(v * 2)) % 2) * 0.15
    return np.clip(np.stack([r, g, b], -1) - checker[..., None], 0, 1)


def look_pose(position: np.ndarray, yaw: float, pitch: float = 0.0) -> np.ndarray:
    """[4, 4] camera-to-world (OpenCV axes) at ``position`` looking along +z turned by yaw/pitch (rad)."""
    c2w = np.eye(4)
    c2w[:3, :3] = Rotation.from_euler("yx", [yaw, pitch]).as_matrix()
    c2w[:3, 3] = position
    return c2w


def trajectory(num_frames: int = 30, speed: float = 0.04, yaw_rate: float = 0.004) -> np.ndarray:
    """[N, 4, 4] camera-to-world poses of a slow forward walk with slight yaw and bob."""
    out = []
    for i in range(num_frames):
        pos = np.array([0.15 * np.sin(0.1 * i), 0.02 * np.sin(0.5 * i), speed * i])
        out.append(look_pose(pos, yaw_rate * i - 0.05, 0.01 * np.sin(0.3 * i)))
    return np.stack(out)


def render(camera: Camera, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast the corridor.

    Returns:
        image: [H, W, 3] uint8 RGB, through ``camera``'s lens distortion.
        depth: [H, W] float64 z-depth in the camera frame.
    """
    h, w = camera.height, camera.width
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    xy = camera.pixel_to_normalized(np.stack([u, v], -1))
    dirs_c = np.concatenate([xy, np.ones_like(xy[..., :1])], -1)
    dirs = dirs_c @ c2w[:3, :3].T
    o = c2w[:3, 3]
    t_best = np.full((h, w), np.inf)
    col = np.zeros((h, w, 3))
    for axis, off in _PLANES:
        d = dirs[..., axis]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (off - o[axis]) / d
        t = np.where((t > 1e-6) & np.isfinite(t), t, np.inf)
        hit = t < t_best
        if hit.any():
            p = o + dirs[hit] * t[hit][:, None]
            col[hit] = _texture(p, axis)
            t_best[hit] = t[hit]
    image = (np.clip(col, 0, 1) * 255 + 0.5).astype(np.uint8)
    return image, t_best  # t along dirs with z=1 in camera frame == z-depth


def sample_points(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """[n, 3] float64 points on the corridor's surfaces and their [n, 3] uint8 colours."""
    rng = np.random.default_rng(seed)
    pts = []
    for k in range(n):
        axis, off = _PLANES[k % len(_PLANES)]
        p = rng.uniform([-2.5, -2.0, 0.5], [2.5, 1.0, 8.0])
        p[axis] = off
        pts.append(p)
    pts = np.array(pts)
    cols = np.stack([(_texture(p[None], a)[0] * 255).astype(np.uint8)
                     for p, (a, _) in zip(pts, [_PLANES[k % len(_PLANES)] for k in range(n)])])
    return pts, cols


def make_scene(width: int = 96, height: int = 64, num_frames: int = 30,
               keyframes: tuple[int, ...] = (0, 9, 19, 29), model: str = "PINHOLE",
               fps: float = 30.0, with_points: bool = True) -> Scene:
    """A posed synthetic scene: ``keyframes`` are the inputs, the other frames are ground truth.

    ``model`` picks the lens: PINHOLE or OPENCV (mild barrel distortion, like an action cam).
    """
    f = 0.6 * width
    if model == "PINHOLE":
        cam = Camera.pinhole(f, f, width / 2, height / 2, width, height)
    elif model == "OPENCV":
        cam = Camera("OPENCV", width, height, (f, f, width / 2, height / 2, -0.12, 0.01, 0.0, 0.0))
    else:
        raise ValueError(model)
    poses = trajectory(num_frames)
    frames, gt = [], []
    for i in range(num_frames):
        img, _ = render(cam, poses[i])
        fr = Frame(index=i, image=img, name=f"frame_{i:04d}.png", c2w=poses[i])
        (frames if i in keyframes else gt).append(fr)
    pts, cols = sample_points() if with_points else (None, None)
    return Scene(frames=frames, camera=cam, fps=fps, gt_frames=gt, points=pts, point_colors=cols,
                 source="synthetic")
