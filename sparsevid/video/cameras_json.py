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

``camera_path.json`` (:func:`write_camera_path_json`) is the same path in nerfstudio's camera-path
format, the file its viewer saves and ``ns-render camera-path --camera-path-filename`` reads::

    {"camera_type": "perspective", "render_width": W, "render_height": H, "fps": 29.97..,
     "seconds": T / fps, "is_cycle": false, "smoothness_value": 0.0, "default_fov": deg,
     "default_transition_sec": s, "keyframes": [{"matrix", "fov", "aspect", ...}, ...],
     "camera_path": [{"camera_to_world": [16 floats, row-major 4x4], "fov": deg, "aspect": W/H}, ...],
     "crop": null}

``camera_to_world`` is the OpenGL c2w (as in ``cameras.json``), flattened row by row; ``fov`` is the
*vertical* field of view in degrees, ``2 atan(H / (2 fy))`` (nerfstudio turns it back into
``fx = fy = (H/2) / tan(fov/2)`` with the principal point at the image centre); ``ns-render`` plays
the ``T`` cameras at ``T / seconds`` = our fps. nerfstudio renders pinhole images: the lens
distortion, a principal point off the centre and ``fx != fy`` are not carried. The poses are in our
world frame; a model trained by nerfstudio lives in its dataparser's normalised frame, so pass its
``dataparser_transforms.json`` to get the path in that frame.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sparsevid.data.camera import Camera
from sparsevid.geometry import opencv_to_opengl
from sparsevid.io_utils import write_json

if TYPE_CHECKING:
    from sparsevid.path.camera_path import PathFrames

_NS_MODEL = {"SIMPLE_PINHOLE": "PINHOLE", "PINHOLE": "PINHOLE", "SIMPLE_RADIAL": "OPENCV", "RADIAL": "OPENCV",
             "OPENCV": "OPENCV", "OPENCV_FISHEYE": "OPENCV_FISHEYE"}


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
    return write_json(file, cameras_dict(path, camera, scale))


def _dataparser_transform(dataparser_transforms: dict | str | Path | None) -> tuple[np.ndarray, float]:
    """nerfstudio's ``dataparser_transforms.json`` (content or path) -> ([4, 4] transform, scale)."""
    if dataparser_transforms is None:
        return np.eye(4), 1.0
    d = dataparser_transforms
    if not isinstance(d, dict):
        d = json.loads(Path(d).read_text())
    t = np.eye(4)
    m = np.asarray(d["transform"], dtype=np.float64)
    t[:m.shape[0], :] = m
    return t, float(d.get("scale", 1.0))


def camera_path_dict(path: "PathFrames", camera: Camera, scale: float = 1.0,
                     dataparser_transforms: dict | str | Path | None = None) -> dict:
    """The ``camera_path.json`` content (nerfstudio's camera-path format, see the module docstring)
    for ``path`` seen through ``camera`` at output ``scale``.

    Args:
        dataparser_transforms: nerfstudio's ``dataparser_transforms.json`` (its content as a dict,
            or its path) to express the poses in the frame of a nerfstudio model trained on our
            ``transforms.json``: ``c2w -> transform @ c2w``, then the position times ``scale``.
            None: our world frame.
    """
    cam = camera if scale == 1.0 else camera.scaled(scale)
    sy = cam.height / camera.height
    w, h = int(cam.width), int(cam.height)
    aspect = w / h
    t, s = _dataparser_transform(dataparser_transforms)
    gl = t[None] @ opencv_to_opengl(path.c2ws)
    gl[:, :3, 3] *= s
    fovs = [math.degrees(2.0 * math.atan(h / (2.0 * float(K[1, 1]) * sy))) for K in path.Ks]
    fps = float(path.fps)
    frames = [{"camera_to_world": gl[k].reshape(-1).tolist(), "fov": fovs[k], "aspect": aspect}
              for k in range(len(path))]
    inputs = [k for k in range(len(path)) if len(path.is_input) and bool(path.is_input[k])] or [0, len(path) - 1]
    keyframes = [{"matrix": gl[k].reshape(-1).tolist(), "fov": fovs[k], "aspect": aspect,
                  "override_transition_enabled": False, "override_transition_sec": None}
                 for k in sorted(set(inputs))]
    seconds = len(path) / fps
    return {"camera_type": "perspective", "render_height": h, "render_width": w,
            "fps": fps, "seconds": seconds, "is_cycle": False, "smoothness_value": 0.0,
            "default_fov": fovs[0], "default_transition_sec": seconds / max(len(keyframes) - 1, 1),
            "keyframes": keyframes, "camera_path": frames, "crop": None}


def write_camera_path_json(file: str | Path, path: "PathFrames", camera: Camera, scale: float = 1.0,
                           dataparser_transforms: dict | str | Path | None = None) -> Path:
    """Write :func:`camera_path_dict` to ``file`` (``OUT/camera_path.json``) atomically; replay it
    with ``ns-render camera-path --load-config CONFIG --camera-path-filename OUT/camera_path.json``."""
    return write_json(file, camera_path_dict(path, camera, scale, dataparser_transforms))
