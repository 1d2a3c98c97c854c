"""``cameras.json``: the camera of every output frame, in nerfstudio's convention.

Layout (nerfstudio ``transforms.json`` plus timing)::

    {"camera_model": "OPENCV", "fl_x", "fl_y", "cx", "cy", "w", "h", "k1", "k2", "p1", "p2", ...,
     "fps": "30000/1001", "fps_float": 29.97..., "num_frames": T,
     "frames": [{"file_path": "frames/frame_0000.png", "time": 0.0, "frame_index": 0,
                 "source_index": 0.0, "is_input": true, "transform_matrix": [[...] x4],
                 "fl_x", "fl_y", "cx", "cy"}, ...]}

``transform_matrix`` is camera-to-world with OpenGL camera axes (x right, y up, z back), i.e. the
OpenCV ``c2w`` with its y and z columns negated. Intrinsics are those of the input camera model at
the output resolution (``scale`` applied); per-frame ``fl_x``/``cx``... repeat the frame's K.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sparsevid.data.camera import Camera
from sparsevid.io_utils import atomic_write_text
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily: sparsevid.path imports sparsevid.video.timebase
    from sparsevid.path.camera_path import PathFrames

_NS_MODEL = {"SIMPLE_PINHOLE": "PINHOLE", "PINHOLE": "PINHOLE", "SIMPLE_RADIAL": "OPENCV", "RADIAL": "OPENCV",
             "OPENCV": "OPENCV", "OPENCV_FISHEYE": "OPENCV_FISHEYE"}


def opencv_to_opengl(c2w: np.ndarray) -> np.ndarray:
    """[..., 4, 4] c2w with OpenCV camera axes -> OpenGL axes (and back: the map is its own inverse)."""
    out = np.array(c2w, dtype=np.float64, copy=True)
    out[..., :3, 1:3] *= -1
    return out


def cameras_dict(path: "PathFrames", camera: Camera, scale: float = 1.0,
                 frame_pattern: str = "frames/frame_{:04d}.png") -> dict:
    """The ``cameras.json`` content for ``path`` seen through ``camera`` (at ``scale``)."""
    cam = camera if scale == 1.0 else camera.scaled(scale)
    sx, sy = cam.width / camera.width, cam.height / camera.height
    d = cam.distortion
    out = {"camera_model": _NS_MODEL[cam.model], "colmap_model": cam.model,
           "fl_x": cam.fx, "fl_y": cam.fy, "cx": cam.cx, "cy": cam.cy, "w": cam.width, "h": cam.height,
           "k1": d["k1"], "k2": d["k2"], "p1": d["p1"], "p2": d["p2"]}
    if cam.is_fisheye:
        out.update(k3=d["k3"], k4=d["k4"])
    out.update(fps=f"{path.fps.numerator}/{path.fps.denominator}", fps_float=float(path.fps),
               num_frames=len(path), frames=[])
    gl = opencv_to_opengl(path.c2ws)
    for k in range(len(path)):
        K = path.Ks[k]
        out["frames"].append({
            "file_path": frame_pattern.format(k), "frame_index": k, "time": float(path.times[k]),
            "time_exact": f"{path.times[k].numerator}/{path.times[k].denominator}",
            "source_index": float(path.source_index[k]),
            "is_input": bool(path.is_input[k]) if len(path.is_input) else False,
            "fl_x": float(K[0, 0] * sx), "fl_y": float(K[1, 1] * sy),
            "cx": float(K[0, 2] * sx), "cy": float(K[1, 2] * sy),
            "transform_matrix": gl[k].tolist()})
    return out


def write_cameras_json(file: str | Path, path: "PathFrames", camera: Camera, scale: float = 1.0) -> Path:
    """Write :func:`cameras_dict` to ``file`` atomically."""
    return atomic_write_text(file, json.dumps(cameras_dict(path, camera, scale), indent=1))
