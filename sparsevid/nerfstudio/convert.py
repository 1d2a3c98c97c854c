"""nerfstudio <-> sparsevid: cameras, poses, datasets.

nerfstudio keeps camera-to-world ``[3, 4]`` poses with OpenGL camera axes in its own world frame (the dataparser
orients, centres and scales the dataset's poses: ``dataparser_transforms.json``); sparsevid uses ``[4, 4]`` poses
with OpenCV axes (:func:`sparsevid.geometry.opencv_to_opengl` flips between them). Both put pixel centres at +0.5
(``cx``, ``cy`` as in COLMAP). nerfstudio's distortion vector is ``[k1, k2, k3, k4, p1, p2]``.
"""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from sparsevid.data.camera import Camera
from sparsevid.data.images import fps_value, index_files
from sparsevid.data.scene import Frame, Scene
from sparsevid.data.timebase import fps_fraction
from sparsevid.errors import SparsevidError
from sparsevid.geometry import opencv_to_opengl, opengl_to_opencv


def to_4x4(m) -> np.ndarray:
    """``[..., 3, 4]`` or ``[..., 4, 4]`` -> ``[..., 4, 4]`` float64."""
    m = np.asarray(m.detach().cpu() if isinstance(m, torch.Tensor) else m, np.float64)
    if m.shape[-2:] == (4, 4):
        return m.copy()
    out = np.broadcast_to(np.eye(4), m.shape[:-2] + (4, 4)).copy()
    out[..., :3, :] = m
    return out


def ns_camera(cameras, index: int = 0) -> Camera:
    """The sparsevid :class:`Camera` of camera ``index`` of a nerfstudio ``Cameras`` object.

    Perspective cameras become PINHOLE (no distortion) or OPENCV (k1, k2, p1, p2); fisheye cameras OPENCV_FISHEYE.
    A perspective camera with k3/k4 or another camera type is an error (sparsevid has no model for it)."""
    from nerfstudio.cameras.cameras import CameraType

    g = (lambda t: float(t[index].reshape(-1)[0]))
    fx, fy, cx, cy = g(cameras.fx), g(cameras.fy), g(cameras.cx), g(cameras.cy)
    w, h = int(cameras.width[index].reshape(-1)[0]), int(cameras.height[index].reshape(-1)[0])
    d = (np.zeros(6) if cameras.distortion_params is None
         else cameras.distortion_params[index].detach().cpu().double().numpy().reshape(6))
    k1, k2, k3, k4, p1, p2 = (float(x) for x in d)
    ctype = int(cameras.camera_type[index].reshape(-1)[0])
    if ctype == CameraType.FISHEYE.value:
        return Camera("OPENCV_FISHEYE", w, h, (fx, fy, cx, cy, k1, k2, k3, k4))
    if ctype != CameraType.PERSPECTIVE.value:
        raise SparsevidError(f"camera type {CameraType(ctype).name} is not supported by sparsevid's fixers",
                             fix="use a perspective or fisheye dataset")
    if k3 != 0.0 or k4 != 0.0:
        raise SparsevidError(f"perspective camera with k3={k3:g}, k4={k4:g}: sparsevid's lens models have no such "
                             "terms", fix="use a dataset with OPENCV (k1, k2, p1, p2) or no distortion")
    if not any((k1, k2, p1, p2)):
        return Camera("PINHOLE", w, h, (fx, fy, cx, cy))
    return Camera("OPENCV", w, h, (fx, fy, cx, cy, k1, k2, p1, p2))


def shared_camera(cameras) -> Camera:
    """The one camera all of ``cameras`` share (a video's frames); an error when they differ."""
    cam = ns_camera(cameras, 0)
    for i in range(1, len(cameras)):
        other = ns_camera(cameras, i)
        if other.model != cam.model or (other.width, other.height) != (cam.width, cam.height) or \
                not np.allclose(other.params, cam.params, rtol=1e-6, atol=1e-9):
            raise SparsevidError(f"training camera {i} has other intrinsics than camera 0; sparsevid's progressive "
                                 "updates need the frames of one video (one shared camera)",
                                 fix="train on a dataset with one camera, or turn the updates off "
                                     "(--pipeline.fixer.progressive False)")
    return cam


def ns_cameras(c2ws_cv: np.ndarray, Ks: np.ndarray, width: int, height: int):
    """nerfstudio pinhole ``Cameras`` [B] for camera-to-world poses with OpenCV axes ``[B, 4, 4]`` (already in the
    model's world frame) and intrinsics ``[B, 3, 3]`` at ``width`` x ``height``."""
    from nerfstudio.cameras.cameras import Cameras, CameraType

    c2ws_cv = np.asarray(c2ws_cv, np.float64).reshape(-1, 4, 4)
    Ks = np.broadcast_to(np.asarray(Ks, np.float64).reshape(-1, 3, 3), (len(c2ws_cv), 3, 3))
    gl = opencv_to_opengl(c2ws_cv)[:, :3, :4]
    col = (lambda v: torch.tensor(v, dtype=torch.float32)[:, None])
    return Cameras(camera_to_worlds=torch.tensor(gl, dtype=torch.float32), fx=col(Ks[:, 0, 0]), fy=col(Ks[:, 1, 1]),
                   cx=col(Ks[:, 0, 2]), cy=col(Ks[:, 1, 2]), width=width, height=height,
                   camera_type=CameraType.PERSPECTIVE)


def dataset_fps(data: Path | None, default: float | None = None) -> Fraction:
    """The source frame rate of a nerfstudio dataset: ``default`` when given, else the ``fps`` key of its
    ``transforms.json`` (``sparsevid poses`` writes it), else 30."""
    if default is not None:
        return fps_fraction(default)
    if data is not None:
        p = Path(data)
        p = p / "transforms.json" if p.is_dir() else p
        if p.suffix == ".json" and p.is_file():
            try:
                fps = json.loads(p.read_text()).get("fps")
            except (OSError, ValueError, AttributeError):
                fps = None
            if fps is not None:
                return fps_value(fps, p, "fix the 'fps' value: a number like 29.97 or a ratio like \"30000/1001\"")
    return Fraction(30)


def scene_from_dataset(dataset, fps: Fraction) -> tuple[Scene, list[int]]:
    """A posed sparsevid :class:`Scene` of a nerfstudio training dataset, in nerfstudio's world frame: the frame
    index of each image comes from its file name (as sparsevid's loaders do: ``frame_0009.png`` -> 9), time =
    index / ``fps``.

    Returns:
        (scene, order): ``order[k]`` is the dataset index of ``scene.frames[k]`` (frames sorted by frame index).
    """
    cameras = dataset.cameras
    camera = shared_camera(cameras)
    names = [Path(p) for p in dataset.image_filenames]
    position = {p: i for i, p in enumerate(names)}
    c2ws = opengl_to_opencv(to_4x4(cameras.camera_to_worlds))
    frames, order = [], []
    for idx, p in index_files(names):
        i = position[p]
        img = dataset.get_numpy_image(i)[..., :3]
        if (img.shape[1], img.shape[0]) != (camera.width, camera.height):
            raise SparsevidError(f"image {p.name} is {img.shape[1]}x{img.shape[0]} but its camera says "
                                 f"{camera.width}x{camera.height}", path=p)
        frames.append(Frame(index=idx, image=np.ascontiguousarray(img, np.uint8), name=p.name, c2w=c2ws[i], path=p))
        order.append(i)
    return Scene(frames=frames, camera=camera, fps=fps, source="nerfstudio"), order


def read_dataparser_transform(path: Path) -> tuple[np.ndarray, float]:
    """(``[4, 4]`` transform, scale) of a nerfstudio ``dataparser_transforms.json``: a pose of the dataset becomes
    ``T @ c2w`` with its translation then multiplied by ``scale`` in the model's world."""
    try:
        d = json.loads(Path(path).read_text())
        return to_4x4(np.asarray(d["transform"], np.float64)), float(d["scale"])
    except (OSError, ValueError, KeyError) as e:
        raise SparsevidError(f"cannot read the dataparser transform ({e})", path=path,
                             fix="point at the config.yml of a finished ns-train run (its folder holds "
                                 "dataparser_transforms.json)") from None


#: the ``applied_transform`` nerfstudio assumes for a dataset with ``colmap/sparse/0`` and no such key (what
#: ``ns-process-data`` applied before it wrote the key; nerfstudio_dataparser.py)
COLMAP_APPLIED_TRANSFORM = ((0.0, 1.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, -1.0, 0.0))


def model_transform(dataparser_json: Path, transforms_json: Path, data_dir: Path | None = None
                    ) -> tuple[np.ndarray, float]:
    """(``[4, 4]`` transform, scale) that take the poses *as written in* ``transforms_json`` into the world of a
    model trained on it (:func:`dataset_to_model`).

    nerfstudio's ``dataparser_transforms.json`` maps the dataset's *original* world (COLMAP's, before
    ``ns-process-data`` applied its ``applied_transform`` and ``applied_scale``) to the model's: it saves
    ``T @ applied_transform`` and ``scale * applied_scale``, while the training cameras are ``T @ c2w`` scaled by
    ``scale``. This undoes the two (with nerfstudio's own default ``applied_transform`` for a dataset that has
    ``colmap/sparse/0`` but not the key; ``data_dir``: the folder the run was given as its data, where nerfstudio
    looks for it; None when it was given the .json) so that a pose of the file lands on the model's training
    camera."""
    transform, scale = read_dataparser_transform(dataparser_json)
    try:
        meta = json.loads(Path(transforms_json).read_text())
    except (OSError, ValueError) as e:
        raise SparsevidError(f"cannot read the dataset ({e})", path=transforms_json,
                             fix="run from the folder ns-train ran in, or restore the dataset") from None
    applied = meta.get("applied_transform")
    if applied is None and data_dir is not None and (Path(data_dir) / "colmap" / "sparse" / "0").exists():
        applied = COLMAP_APPLIED_TRANSFORM
    try:
        if applied is not None:
            transform = transform @ np.linalg.inv(to_4x4(np.asarray(applied, np.float64)))
        if "applied_scale" in meta:
            scale = scale / float(meta["applied_scale"])
    except (ValueError, TypeError, ZeroDivisionError, np.linalg.LinAlgError) as e:
        raise SparsevidError(f"unreadable applied_transform / applied_scale ({e})", path=transforms_json,
                             fix="fix the keys, or write the dataset again with ns-process-data") from None
    return transform, scale


def dataset_to_model(c2ws_cv: np.ndarray, transform: np.ndarray, scale: float) -> np.ndarray:
    """Camera-to-world poses ``[..., 4, 4]`` (OpenCV axes) of the dataset's world -> the model's world. The axis
    flip acts on camera axes (right), the transform on world axes (left), so the two commute."""
    out = np.asarray(transform, np.float64) @ np.asarray(c2ws_cv, np.float64)
    out[..., :3, 3] *= scale
    return out
