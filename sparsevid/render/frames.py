"""Render the camera path in the input lens.

Every output frame is rendered by the trainer on the undistorted pinhole *canvas* of an
:class:`~sparsevid.poses.undistort.Undistorter`, then the input lens distortion is re-applied, so
the frames line up pixel for pixel with the source video (at ``scale`` x its resolution).

``render_fn(c2ws [B, 4, 4], Ks [B, 3, 3], width, height) -> {"rgb": [B, H, W, 3], "depth": [B, H, W, 1],
"alpha": [B, H, W, 1]}`` is the trainer's render: it receives float32 CPU torch tensors (move them
to your device) and returns torch tensors (any device) with rgb in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from sparsevid.data.camera import Camera
from sparsevid.log import progress
from sparsevid.poses.undistort import Undistorter

RenderFn = Callable[[torch.Tensor, torch.Tensor, int, int], dict]


@dataclass
class RenderedPath:
    """Output of :func:`render_path`.

    Attributes:
        frames: T x [H, W, 3] uint8 RGB in the input lens (empty when rendered with ``distort=False``).
        canvas_rgb: [T, Hc, Wc, 3] float32 in [0, 1] on the pinhole canvas, or None.
        canvas_depth: [T, Hc, Wc, 1] float32, or None.
        canvas_alpha: [T, Hc, Wc, 1] float32, or None.
    """

    frames: list[np.ndarray]
    canvas_rgb: np.ndarray | None = None
    canvas_depth: np.ndarray | None = None
    canvas_alpha: np.ndarray | None = None


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8 (rounded, clipped)."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def distort_frames(canvas_rgb: Sequence[np.ndarray] | np.ndarray, undistorter: Undistorter) -> list[np.ndarray]:
    """Canvas images (T x [Hc, Wc, 3], float in [0, 1] or uint8) -> T x [H, W, 3] uint8 in the input lens.
    Float images are re-distorted in float and quantised once at the end."""
    out = []
    for img in canvas_rgb:
        d = undistorter.distort_image(np.asarray(img))
        out.append(d if d.dtype == np.uint8 else to_uint8(d))
    return out


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def render_path(render_fn: RenderFn, path_c2ws: np.ndarray, undistorter: Undistorter | Camera,
                scale: float = 1.0, Ks: np.ndarray | None = None, batch: int = 4,
                keep_canvas: bool = False, description: str = "rendering", distort: bool = True) -> RenderedPath:
    """Render every camera of the path.

    Args:
        render_fn: the trainer's render (see the module docstring).
        path_c2ws: [T, 4, 4] camera-to-world (OpenCV axes).
        undistorter: the lens to render in, or a :class:`Camera` (then ``Undistorter.for_camera(camera,
            scale)`` is used; ``scale`` is ignored when an Undistorter is given).
        Ks: [T, 3, 3] canvas intrinsics per frame; default the canvas K for every frame.
        batch: cameras per ``render_fn`` call.
        keep_canvas: also return the canvas-space rgb/depth/alpha (the fixer uses them).
        distort: also re-distort every render to the input lens (``frames``); False leaves
            ``frames`` empty, for callers that fix the canvas first and distort once afterwards.

    Returns:
        :class:`RenderedPath`.
    """
    und = undistorter if isinstance(undistorter, Undistorter) else Undistorter.for_camera(undistorter, scale)
    c2ws = np.asarray(path_c2ws, dtype=np.float64)
    T = len(c2ws)
    wc, hc = und.canvas_size
    if Ks is None:
        Ks = np.broadcast_to(und.pinhole.K, (T, 3, 3))
    Ks = np.array(Ks, dtype=np.float64)
    frames: list[np.ndarray] = []
    canvas: dict[str, list[np.ndarray]] = {"rgb": [], "depth": [], "alpha": []}
    batch = max(1, int(batch))
    with progress() as p, torch.no_grad():
        task = p.add_task(description, total=T, status=f"{wc}x{hc} canvas")
        for s in range(0, T, batch):
            e = min(T, s + batch)
            out = render_fn(torch.from_numpy(c2ws[s:e]).float(), torch.from_numpy(Ks[s:e]).float(), wc, hc)
            rgb = _numpy(out["rgb"])
            if distort:
                frames.extend(distort_frames(rgb, und))
            if keep_canvas:
                canvas["rgb"].append(rgb)
                for k in ("depth", "alpha"):
                    if out.get(k) is not None:
                        canvas[k].append(_numpy(out[k]))
            p.update(task, advance=e - s)
    res = RenderedPath(frames=frames)
    if keep_canvas:
        res.canvas_rgb = np.concatenate(canvas["rgb"]) if canvas["rgb"] else None
        res.canvas_depth = np.concatenate(canvas["depth"]) if canvas["depth"] else None
        res.canvas_alpha = np.concatenate(canvas["alpha"]) if canvas["alpha"] else None
    return res


def render_frames(render_fn: RenderFn, path_c2ws: np.ndarray, undistorter: Undistorter | Camera,
                  batch: int = 4, scale: float = 1.0, Ks: np.ndarray | None = None) -> list[np.ndarray]:
    """Render the path -> T x [H, W, 3] uint8 frames in the input lens (see :func:`render_path`)."""
    return render_path(render_fn, path_c2ws, undistorter, scale=scale, Ks=Ks, batch=batch).frames
