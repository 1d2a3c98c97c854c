"""Nerfstudio ``transforms.json``: read and write.

Convention: ``transform_matrix`` is camera-to-world with OpenGL camera axes (x right, y up,
z backward); we use OpenCV axes, so the y and z columns are flipped on load and on write.
Intrinsics (``fl_x, fl_y, cx, cy, w, h, k1..k4, p1, p2, camera_model``) may be global or per
frame; frames of one video must resolve to one camera. ``ply_file_path`` points are loaded
when present. ``camera_angle_x`` (instant-ngp / Blender style) is accepted instead of focal lengths.
"""
from __future__ import annotations

import json
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from sparsevid.data.camera import Camera
from sparsevid.data.images import (check_same_size, fps_value, index_files, is_image_file, read_fps_meta,
                                   read_image, write_image)
from sparsevid.data.scene import Frame, Scene
from sparsevid.errors import SparsevidError
from sparsevid.geometry import GL_FLIP, nearest_rotation, opengl_to_opencv, rotation_problem
from sparsevid.io_utils import atomic_save, atomic_write_text


_PERSPECTIVE_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")
_DIST_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
_INTRINSIC_KEYS = ("camera_model", "fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x",
                   "camera_angle_y") + _DIST_KEYS


def _num(d: dict, key: str, where: Path, default: float | None = None) -> float:
    if key not in d:
        if default is not None:
            return default
        raise SparsevidError(f"missing key '{key}' (globally and in a frame)",
                             fix=f"add '{key}' to transforms.json", path=where)
    try:
        v = float(d[key])
    except (TypeError, ValueError):
        raise SparsevidError(f"key '{key}' is not a number: {d[key]!r}", fix=f"fix '{key}'", path=where) from None
    if not math.isfinite(v):
        raise SparsevidError(f"key '{key}' is not a finite number: {d[key]!r}", fix=f"fix '{key}'", path=where)
    return v


def camera_from_intrinsics(d: dict[str, Any], where: Path, size: tuple[int, int] | None = None) -> Camera:
    """A :class:`Camera` from nerfstudio intrinsics keys (see :func:`_camera_from_keys`), refused in one line when
    its values are impossible for a real camera (:meth:`Camera.implausible`: a negative or absurd focal length,
    a principal point far outside the frame, ...)."""
    cam = _camera_from_keys(d, where, size)
    problem = cam.implausible()
    if problem is not None:
        raise SparsevidError(f"implausible camera intrinsics: {problem}",
                             fix="fix fl_x / fl_y / cx / cy / w / h and the distortion keys (pixels of the image as "
                                 "stored), or write the file again with `sparsevid poses`", path=where)
    return cam


def _camera_from_keys(d: dict[str, Any], where: Path, size: tuple[int, int] | None = None) -> Camera:
    """A :class:`Camera` from nerfstudio intrinsics keys.

    The requested ``camera_model`` is kept when it represents the values exactly (e.g. equal
    focal lengths for SIMPLE_*); otherwise a perspective camera becomes OPENCV.

    Args:
        d: the merged global + per-frame keys.
        size: (width, height) of the image, used when ``w``/``h`` are absent.
    """
    model = str(d.get("camera_model", "OPENCV")).upper()
    if model not in _PERSPECTIVE_MODELS + ("OPENCV_FISHEYE",):
        raise SparsevidError(f"unsupported camera_model {model!r}",
                             fix="use OPENCV, OPENCV_FISHEYE, PINHOLE, SIMPLE_PINHOLE, SIMPLE_RADIAL or RADIAL",
                             path=where)
    if ("w" not in d or "h" not in d) and size is None:
        _num(d, "w" if "w" not in d else "h", where)
    w = int(_num(d, "w", where, float(size[0]) if size else None))
    h = int(_num(d, "h", where, float(size[1]) if size else None))
    if "fl_x" not in d and "camera_angle_x" in d:
        fx = 0.5 * w / math.tan(0.5 * _num(d, "camera_angle_x", where))
        fy = 0.5 * h / math.tan(0.5 * _num(d, "camera_angle_y", where)) if "camera_angle_y" in d else fx
    else:
        fx = _num(d, "fl_x", where)
        fy = _num(d, "fl_y", where, fx)
    cx, cy = _num(d, "cx", where, w / 2), _num(d, "cy", where, h / 2)
    k = {key: _num(d, key, where, 0.0) for key in _DIST_KEYS}
    if model == "OPENCV_FISHEYE":
        if k["p1"] or k["p2"]:
            raise SparsevidError("OPENCV_FISHEYE has no p1/p2", fix="set p1 and p2 to 0", path=where)
        return Camera(model, w, h, (fx, fy, cx, cy, k["k1"], k["k2"], k["k3"], k["k4"]))
    if k["k3"] or k["k4"]:
        raise SparsevidError(f"distortion k3/k4 is not supported for camera_model {model}",
                             fix="use OPENCV (k1, k2, p1, p2) or OPENCV_FISHEYE (k1..k4)", path=where)
    same_f = fx == fy
    tangential = bool(k["p1"] or k["p2"])
    if model in ("SIMPLE_PINHOLE", "PINHOLE") and not (k["k1"] or k["k2"] or tangential):
        if model == "SIMPLE_PINHOLE" and same_f:
            return Camera(model, w, h, (fx, cx, cy))
        return Camera("PINHOLE", w, h, (fx, fy, cx, cy))
    if model == "SIMPLE_RADIAL" and same_f and not (k["k2"] or tangential):
        return Camera(model, w, h, (fx, cx, cy, k["k1"]))
    if model == "RADIAL" and same_f and not tangential:
        return Camera(model, w, h, (fx, cx, cy, k["k1"], k["k2"]))
    return Camera("OPENCV", w, h, (fx, fy, cx, cy, k["k1"], k["k2"], k["p1"], k["p2"]))


def camera_to_intrinsics(camera: Camera) -> dict[str, Any]:
    """Nerfstudio intrinsics keys for ``camera`` (camera_model keeps the COLMAP model name;
    nerfstudio reads all six)."""
    d = camera.distortion
    out: dict[str, Any] = {"camera_model": camera.model, "fl_x": camera.fx, "fl_y": camera.fy,
                           "cx": camera.cx, "cy": camera.cy, "w": camera.width, "h": camera.height}
    keys = ("k1", "k2", "k3", "k4") if camera.is_fisheye else ("k1", "k2", "p1", "p2")
    out.update({k: d[k] for k in keys})
    return out


def _resolve_image(base: Path, file_path: str) -> Path | None:
    p = base / file_path
    if p.is_file():
        return p
    if not p.suffix:
        for ext in (".png", ".jpg", ".jpeg"):
            if p.with_suffix(ext).is_file():
                return p.with_suffix(ext)
    return None


def _read_json(path: Path) -> dict:
    try:
        meta = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SparsevidError(f"cannot parse JSON ({e})", fix="fix or regenerate the file", path=path) from None
    if not isinstance(meta, dict):
        raise SparsevidError("expected a JSON object with 'frames'", fix="fix or regenerate the file", path=path)
    return meta


def read_ply_points(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """[N, 3] float64 points and [N, 3] uint8 colours (grey when absent) of a point-cloud .ply."""
    from plyfile import PlyData

    try:
        v = PlyData.read(str(path))["vertex"]
        xyz = np.stack([np.asarray(v[k], np.float64) for k in ("x", "y", "z")], -1)
    except Exception as e:
        raise SparsevidError(f"cannot read point cloud ({type(e).__name__}: {str(e).strip()[:100]})",
                             fix="fix the .ply or remove 'ply_file_path' from transforms.json", path=path) from None
    names = v.data.dtype.names
    if all(k in names for k in ("red", "green", "blue")):
        rgb = np.stack([np.asarray(v[k]) for k in ("red", "green", "blue")], -1).astype(np.uint8)
    else:
        rgb = np.full((len(xyz), 3), 128, np.uint8)
    return xyz.reshape(-1, 3), rgb.reshape(-1, 3)


def write_ply_points(path: Path, points: np.ndarray, colors: np.ndarray | None) -> Path:
    """Write [N, 3] points (+ [N, 3] uint8 colours) as a binary little-endian .ply, atomically."""
    from plyfile import PlyData, PlyElement

    pts = np.asarray(points, np.float64).reshape(-1, 3)
    cols = np.asarray(colors, np.uint8).reshape(-1, 3) if colors is not None else np.full((len(pts), 3), 128, np.uint8)
    rec = np.empty(len(pts), dtype=[("x", "<f8"), ("y", "<f8"), ("z", "<f8"),
                                    ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for i, k in enumerate("xyz"):
        rec[k] = pts[:, i]
    for i, k in enumerate(("red", "green", "blue")):
        rec[k] = cols[:, i]
    ply = PlyData([PlyElement.describe(rec, "vertex")], byte_order="<")
    return atomic_save(path, lambda tmp: ply.write(str(tmp)))


def _say_if_axes_look_flipped(path: Path, c2ws: list[np.ndarray], points: np.ndarray) -> None:
    """One warning line when the dataset's points lie behind most of its cameras as read (OpenGL axes) and in front
    of them with the camera axes flipped: poses written with OpenCV axes (COLMAP's) into a ``transforms.json``,
    which renders the scene from behind the cameras (held-out PSNR 11 dB instead of 23 on a synthetic orbit)."""
    if len(points) < 20 or not c2ws:
        return
    from sparsevid.geometry import fraction_in_front

    cv = np.stack(c2ws)
    as_read, flipped = np.median(fraction_in_front(cv, points)), np.median(fraction_in_front(cv @ GL_FLIP, points))
    if as_read < 0.2 and flipped > 0.6:
        from sparsevid.log import warn

        warn(f"{path.name}: its points lie in front of the cameras only with the camera axes flipped ({100 * as_read:.0f} % "
             f"in front as read, {100 * flipped:.0f} % flipped): are its transform_matrix written with OpenCV axes? "
             "transforms.json takes OpenGL axes (x right, y up, z back); convert with c2w @ diag(1, -1, -1, 1)")


def read_transforms(path: Path) -> Scene:
    """A nerfstudio ``transforms.json`` -> posed :class:`Scene`.

    Listed frames are input frames; other images in the same folder (not listed) become
    ground-truth frames without pose.
    """
    path = Path(path)
    meta = _read_json(path)
    base = path.parent
    frames_meta = meta.get("frames")
    if not isinstance(frames_meta, list) or not frames_meta:
        raise SparsevidError("missing key 'frames' (a non-empty list)", fix="add the frames to transforms.json",
                             path=path)
    glob = {k: meta[k] for k in _INTRINSIC_KEYS if k in meta}
    camera: Camera | None = None
    posed: dict[Path, np.ndarray] = {}
    seen: dict[Path, int] = {}  # the frame that named each image
    for i, fm in enumerate(frames_meta):
        if not isinstance(fm, dict):
            raise SparsevidError(f"frame {i} is not a JSON object", fix="fix the frames list", path=path)
        for key in ("file_path", "transform_matrix"):
            if key not in fm:
                raise SparsevidError(f"missing key '{key}' in frame {i}", fix=f"add '{key}' to every frame",
                                     path=path)
        img_path = _resolve_image(base, str(fm["file_path"]))
        if img_path is None:
            raise SparsevidError(f"image {fm['file_path']} referenced by transforms.json is missing",
                                 fix="restore the image or remove the frame from transforms.json", path=base / fm["file_path"])
        try:
            m = np.asarray(fm["transform_matrix"], np.float64)
        except (ValueError, TypeError):  # text, ragged rows
            m = np.full((0,), np.nan)
        if m.shape == (3, 4):
            m = np.vstack([m, [0, 0, 0, 1]])
        if m.shape != (4, 4) or not np.all(np.isfinite(m)):
            raise SparsevidError(f"frame {i} ({fm['file_path']}): transform_matrix must be 4x4 finite numbers",
                                 fix="fix the frame's transform_matrix", path=path)
        if np.abs(m[3] - [0, 0, 0, 1]).max() > 1e-6:
            raise SparsevidError(f"frame {i} ({fm['file_path']}): transform_matrix's last row is "
                                 f"{m[3].tolist()}, not [0, 0, 0, 1]", fix="give a camera-to-world [R | t] matrix",
                                 path=path)
        problem = rotation_problem(m[:3, :3])
        if problem:
            raise SparsevidError(f"frame {i} ({fm['file_path']}): transform_matrix's rotation is {problem}",
                                 fix="give each camera's rotation as a proper rotation matrix (nerfstudio's OpenGL "
                                     "axes: x right, y up, z back)", path=path)
        m[:3, :3] = nearest_rotation(m[:3, :3])
        key = img_path.resolve()
        if key in posed:
            raise SparsevidError(f"frames {seen[key]} and {i} both name the image {fm['file_path']}",
                                 fix="give each frame its own file_path", path=path)
        seen[key] = i
        posed[key] = opengl_to_opencv(m)
        merged = {**glob, **{k: fm[k] for k in _INTRINSIC_KEYS if k in fm}}
        need_size = "w" not in merged or "h" not in merged
        cam = camera_from_intrinsics(merged, path, read_image(img_path).shape[1::-1] if need_size else None)
        if camera is None:
            camera = cam
        elif cam != camera and not (cam.model == camera.model and cam.width == camera.width
                                    and cam.height == camera.height
                                    and np.allclose(cam.params, camera.params, rtol=1e-9, atol=1e-12)):
            raise SparsevidError(f"frame {i} ({fm['file_path']}) has other intrinsics than frame 0; "
                                 "frames of one video must share one camera",
                                 fix="use one set of intrinsics for all frames", path=path)
    masked = sum(1 for fm in frames_meta if fm.get("mask_path"))
    if masked:
        from sparsevid.log import warn

        warn(f"{path.name}: {masked} frames have a mask_path; sparsevid does not use masks (the masked pixels are "
             "trained on and fused like the others)")
    folders = {p.parent for p in posed}
    extra = ([p for p in next(iter(folders)).iterdir() if is_image_file(p) and p.resolve() not in posed]
             if len(folders) == 1 else [])
    frames, gt = [], []
    for idx, p in index_files(list(posed) + extra):
        c2w = posed.get(p.resolve())
        fr = Frame(index=idx, image=read_image(p), name=p.name, c2w=c2w, path=p)
        (frames if c2w is not None else gt).append(fr)
    check_same_size(frames + gt, base)
    assert camera is not None
    if (frames[0].width, frames[0].height) != (camera.width, camera.height):
        raise SparsevidError(f"images are {frames[0].width}x{frames[0].height} but w, h say "
                             f"{camera.width}x{camera.height}", fix="fix 'w'/'h' or use the original images",
                             path=path)
    points = colors = None
    if meta.get("ply_file_path"):
        ply = base / str(meta["ply_file_path"])
        if not ply.is_file():
            raise SparsevidError("point cloud referenced by 'ply_file_path' is missing",
                                 fix="restore it or remove 'ply_file_path' from transforms.json", path=ply)
        points, colors = read_ply_points(ply)
        _say_if_axes_look_flipped(path, [f.c2w for f in frames if f.c2w is not None], points)
    fps = (fps_value(meta["fps"], path, "fix the 'fps' value: a number like 29.97 or a ratio like \"30000/1001\"")
           if "fps" in meta else read_fps_meta(*folders, base))
    return Scene(frames=frames, camera=camera, fps=fps if fps else Fraction(30), gt_frames=gt, points=points,
                 point_colors=colors, source="nerfstudio", root=base)


def write_transforms(scene: Scene, path: Path, write_images: bool = False, include_gt: bool = True,
                     images_subdir: str = "images", ply_name: str = "sparse_pc.ply") -> Path:
    """Write ``scene`` as a nerfstudio ``transforms.json`` (OpenGL axes, shared intrinsics +
    distortion, optional points .ply).

    Args:
        path: the .json file to write.
        write_images: copy every frame's image to ``<path's folder>/<images_subdir>/``; frames
            without an image file on disk are always written there.
        include_gt: also write ground-truth frames that have a pose.
        ply_name: file name of the points .ply (written when the scene has points).

    Returns:
        ``path``.
    """
    path = Path(path)
    if scene.camera is None:
        raise SparsevidError("scene has no camera; cannot write transforms.json",
                             fix="estimate poses first (sparsevid poses)")
    frames = sorted((f for f in scene.frames + (scene.gt_frames if include_gt else []) if f.c2w is not None),
                    key=lambda f: f.index)
    if not frames:
        raise SparsevidError("scene has no posed frames; cannot write transforms.json",
                             fix="estimate poses first (sparsevid poses)")
    base = path.parent
    base.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = camera_to_intrinsics(scene.camera)
    meta["fps"] = float(scene.fps)  # JSON: a float, read back exactly by fps_fraction
    out_frames = []
    for fr in frames:
        if write_images or fr.path is None or not Path(fr.path).is_file():
            name = Path(fr.name).name if fr.name else f"frame_{fr.index:04d}.png"
            target = base / images_subdir / name
            write_image(target, fr.image)
            file_path = f"{images_subdir}/{name}"
        else:
            file_path = Path(os.path.relpath(Path(fr.path).resolve(), base.resolve())).as_posix()
        out_frames.append({"file_path": file_path,
                           "transform_matrix": opengl_to_opencv(fr.c2w).tolist()})
    meta["frames"] = out_frames
    if scene.points is not None and len(scene.points):
        write_ply_points(base / ply_name, scene.points, scene.point_colors)
        meta["ply_file_path"] = ply_name
    atomic_write_text(path, json.dumps(meta, indent=2))
    return path
