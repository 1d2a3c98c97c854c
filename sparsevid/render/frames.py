"""Render the camera path in the input lens.

Every output frame is rendered by the trainer on the undistorted pinhole *canvas* of an
:class:`~sparsevid.poses.undistort.Undistorter`, then the input lens distortion is re-applied, so
the frames line up pixel for pixel with the source video (at ``scale`` x its resolution).

``render_fn(c2ws [B, 4, 4], Ks [B, 3, 3], width, height) -> {"rgb": [B, H, W, 3], "depth": [B, H, W, 1],
"alpha": [B, H, W, 1]}`` is the trainer's render: it receives float32 CPU torch tensors (move them
to your device) and returns torch tensors (any device) with rgb in [0, 1].
"""
from __future__ import annotations

import contextlib
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

    def __len__(self) -> int:
        return len(self.frames) if self.canvas_rgb is None else len(self.canvas_rgb)

    def canvas(self, sl: slice) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The canvases of the frames ``sl``: (rgb, depth or None, alpha or None), as :meth:`PathRenderer.canvas`."""
        cut = (lambda a: None if a is None else a[sl])
        return cut(self.canvas_rgb), cut(self.canvas_depth), cut(self.canvas_alpha)


class PathRenderer:
    """The path's cameras rendered on demand, a few frames at a time, on the canvas of an undistorter: for callers
    that use the canvases a chunk at a time (:func:`sparsevid.fuse.route3d.path_frames_3d`) instead of holding the
    whole path's (:func:`render_path` with ``keep_canvas``: 20 bytes a canvas pixel and frame, ~17 MB a frame at
    848x480 behind a wide-angle lens). The same pixels as :func:`render_path` for the same cameras.

    Args:
        render_fn: the trainer's render (see the module docstring).
        path_c2ws: [T, 4, 4] camera-to-world (OpenCV axes).
        undistorter: the lens to render in (its canvas and pinhole K).
        Ks: [T, 3, 3] canvas intrinsics per frame; default the canvas K for every frame.
        batch: cameras per ``render_fn`` call.
        timer: a :class:`sparsevid.log.StageTimer`: each render call is timed as its stage "rendering", or None.
    """

    def __init__(self, render_fn: RenderFn, path_c2ws: np.ndarray, undistorter: Undistorter,
                 Ks: np.ndarray | None = None, batch: int = 4, timer=None) -> None:
        self.render_fn, self.und, self.timer = render_fn, undistorter, timer
        self.c2ws = np.asarray(path_c2ws, dtype=np.float64)
        T = len(self.c2ws)
        self.Ks = np.array(np.broadcast_to(undistorter.pinhole.K, (T, 3, 3)) if Ks is None else Ks, dtype=np.float64)
        self.batch = max(1, int(batch))

    def __len__(self) -> int:
        return len(self.c2ws)

    @property
    def canvas_size(self) -> tuple[int, int]:
        """(width, height) of the canvas."""
        return self.und.canvas_size

    def canvas(self, sl: slice) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Render the frames ``sl`` (in calls of ``batch`` cameras from its start) -> (rgb [n, Hc, Wc, 3] float32 in
        [0, 1], depth [n, Hc, Wc, 1] float32 or None, alpha [n, Hc, Wc, 1] float32 or None), numpy."""
        start, stop, _ = sl.indices(len(self))
        wc, hc = self.canvas_size
        out: dict[str, np.ndarray | None] = {"rgb": None, "depth": None, "alpha": None}
        for s in range(start, stop, self.batch):
            e = min(stop, s + self.batch)
            with (self.timer("rendering") if self.timer is not None else contextlib.nullcontext()), torch.no_grad():
                res = self.render_fn(torch.from_numpy(self.c2ws[s:e]).float(), torch.from_numpy(self.Ks[s:e]).float(),
                                     wc, hc)
                for k in out:  # filled in place: no list of batches concatenated into a second copy
                    if res.get(k) is None:
                        continue
                    x = _numpy(res[k])
                    if out[k] is None:
                        out[k] = np.empty((stop - start,) + x.shape[1:], np.float32)
                    out[k][s - start:e - start] = x
        return out["rgb"], out["depth"], out["alpha"]


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
    renderer = PathRenderer(render_fn, path_c2ws, und, Ks=Ks, batch=batch)
    T = len(renderer)
    wc, hc = und.canvas_size
    frames: list[np.ndarray] = []
    canvas: dict[str, np.ndarray | None] = {"rgb": None, "depth": None, "alpha": None}
    with progress() as p:
        task = p.add_task(description, total=T, status=f"{wc}x{hc} canvas")
        for s in range(0, T, renderer.batch):
            e = min(T, s + renderer.batch)
            part = dict(zip(("rgb", "depth", "alpha"), renderer.canvas(slice(s, e))))
            if distort:
                frames.extend(distort_frames(part["rgb"], und))
            if keep_canvas:
                for k, x in part.items():  # filled in place: no list of batches concatenated into a second copy
                    if x is not None:
                        if canvas[k] is None:
                            canvas[k] = np.empty((T,) + x.shape[1:], np.float32)
                        canvas[k][s:e] = x
            p.update(task, advance=e - s)
    return RenderedPath(frames=frames, canvas_rgb=canvas["rgb"], canvas_depth=canvas["depth"],
                        canvas_alpha=canvas["alpha"])


def render_frames(render_fn: RenderFn, path_c2ws: np.ndarray, undistorter: Undistorter | Camera,
                  batch: int = 4, scale: float = 1.0, Ks: np.ndarray | None = None) -> list[np.ndarray]:
    """Render the path -> T x [H, W, 3] uint8 frames in the input lens (see :func:`render_path`)."""
    return render_path(render_fn, path_c2ws, undistorter, scale=scale, Ks=Ks, batch=batch).frames
