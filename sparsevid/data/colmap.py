"""COLMAP models (binary or text), read and written through pycolmap's ``Reconstruction``.

Layouts found by :func:`find_colmap_model`: ``DATA/sparse/0``, ``DATA/colmap/sparse/0``,
``DATA/sparse``, ``DATA/colmap/sparse`` or a model folder itself; images in ``DATA/images``.
COLMAP stores world-to-camera poses with OpenCV camera axes; we keep the axes and invert
the pose to camera-to-world.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from sparsevid.data.camera import CAMERA_MODELS, Camera
from sparsevid.data.images import (check_same_size, index_files, is_image_file, read_fps_meta,
                                   read_image, write_image)
from sparsevid.data.scene import Frame, Scene
from sparsevid.errors import SparsevidError

_MODEL_FILES = ("cameras", "images", "points3D")
_MODEL_SUBDIRS = ("sparse/0", "colmap/sparse/0", "sparse", "colmap/sparse")


def _model_files_present(folder: Path) -> dict[str, list[str]]:
    """Which of cameras/images/points3D exist in ``folder``, by extension (``.bin``/``.txt``)."""
    return {ext: [n for n in _MODEL_FILES if (folder / f"{n}{ext}").is_file()] for ext in (".bin", ".txt")}


def looks_like_model(folder: Path) -> bool:
    """True if ``folder`` holds at least one COLMAP model file."""
    return folder.is_dir() and any(_model_files_present(folder).values())


def find_colmap_model(root: Path) -> Path | None:
    """The COLMAP model folder under ``root`` (see the module doc for the layouts), or None."""
    root = Path(root)
    for sub in ("",) + _MODEL_SUBDIRS:
        cand = root / sub if sub else root
        if looks_like_model(cand):
            return cand
    for sub in ("sparse/0", "colmap/sparse/0"):
        cand = root / sub
        if cand.is_dir() and not any(cand.iterdir()):
            raise SparsevidError("COLMAP model folder is empty (no cameras/images/points3D .bin or .txt)",
                                 fix="re-run COLMAP, or remove the empty folder to use the images without poses",
                                 path=cand)
    return None


def _check_complete(model_dir: Path) -> None:
    present = _model_files_present(model_dir)
    for ext in (".bin", ".txt"):
        if len(present[ext]) == len(_MODEL_FILES):
            return
    ext = ".bin" if len(present[".bin"]) >= len(present[".txt"]) else ".txt"
    missing = [n + ext for n in _MODEL_FILES if n not in present[ext]]
    raise SparsevidError(f"partial COLMAP model: missing {', '.join(missing)}",
                         fix="re-export the full model (cameras, images, points3D) or re-run COLMAP",
                         path=model_dir)


@contextlib.contextmanager
def _address_space_cap(extra_bytes: int) -> Iterator[None]:
    """Cap this process's virtual memory at its current size + ``extra_bytes`` for the block.

    COLMAP's binary reader trusts the lengths stored in the file: a truncated or corrupted
    points3D.bin can ask for many GB and take the machine down. Under the cap such a request
    fails fast with ``MemoryError`` (std::bad_alloc) instead. No-op where RLIMIT_AS is unavailable.
    """
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError, AttributeError):
        yield
        return
    cap = current + extra_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft != resource.RLIM_INFINITY and soft <= cap:
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def read_reconstruction(model_dir: Path):
    """``pycolmap.Reconstruction`` of ``model_dir``; one-line error when incomplete or unreadable."""
    import pycolmap

    model_dir = Path(model_dir)
    _check_complete(model_dir)
    size = sum(p.stat().st_size for p in model_dir.iterdir() if p.is_file())
    try:
        with _address_space_cap(256 * 2**20 + 32 * size):
            return pycolmap.Reconstruction(model_dir)
    except Exception as e:  # pycolmap raises ValueError/IndexError/RuntimeError on bad files
        raise SparsevidError(f"unreadable COLMAP model ({type(e).__name__}: {str(e).strip()[:120]})",
                             fix="re-export the model with COLMAP (binary or text)", path=model_dir) from None


def camera_from_pycolmap(cam, where: Path) -> Camera:
    """Our :class:`Camera` from a ``pycolmap.Camera``."""
    model = cam.model.name
    if model not in CAMERA_MODELS:
        raise SparsevidError(f"unsupported COLMAP camera model {model}",
                             fix=f"re-run COLMAP with one of {', '.join(CAMERA_MODELS)}", path=where)
    return Camera(model, int(cam.width), int(cam.height), tuple(float(p) for p in cam.params))


def camera_to_pycolmap(camera: Camera, camera_id: int = 1):
    import pycolmap

    return pycolmap.Camera(model=camera.model, width=camera.width, height=camera.height,
                           params=list(camera.params), camera_id=camera_id)


def _c2w_of(im, model_dir: Path) -> np.ndarray:
    """An image's camera-to-world pose; its quaternion normalised as COLMAP does when it reads a model (pycolmap
    keeps a text model's as written), a zero or non-finite one refused."""
    from scipy.spatial.transform import Rotation

    rigid = im.cam_from_world()
    q = np.asarray(rigid.rotation.quat, np.float64)  # x, y, z, w
    t = np.asarray(rigid.translation, np.float64).reshape(3, 1)
    n = float(np.linalg.norm(q))
    if not np.isfinite(n) or n < 1e-8 or not np.all(np.isfinite(t)):
        raise SparsevidError(f"image {im.name}: its pose (quaternion {q[[3, 0, 1, 2]].tolist()}, translation "
                             f"{t.ravel().tolist()}) is not a camera pose", path=model_dir,
                             fix="give it a unit quaternion QW QX QY QZ and finite TX TY TZ, or re-run COLMAP")
    return c2w_from_cam_from_world(np.hstack([Rotation.from_quat(q / n).as_matrix(), t]))


def c2w_from_cam_from_world(m34: np.ndarray) -> np.ndarray:
    """[3, 4] world-to-camera [R | t] -> [4, 4] camera-to-world (same OpenCV axes)."""
    r, t = np.asarray(m34[:, :3], np.float64), np.asarray(m34[:, 3], np.float64)
    c2w = np.eye(4)
    c2w[:3, :3] = r.T
    c2w[:3, 3] = -r.T @ t
    return c2w


def cam_from_world_from_c2w(c2w: np.ndarray) -> np.ndarray:
    """[4, 4] camera-to-world -> [3, 4] world-to-camera [R | t]."""
    c2w = np.asarray(c2w, np.float64)
    r = c2w[:3, :3].T
    return np.concatenate([r, (-r @ c2w[:3, 3])[:, None]], 1)


def _check_camera(cam: Camera, where: Path) -> Camera:
    """Reject garbage intrinsics (what a corrupted cameras.bin decodes to)."""
    if cam.implausible() is not None:
        raise SparsevidError(f"unreadable COLMAP model (implausible camera {cam.model} {cam.width}x{cam.height} "
                             f"params {[float(f'{p:.3g}') for p in cam.params]})",
                             fix="re-export the model with COLMAP (binary or text)", path=where)
    return cam


def _shared_camera(rec, model_dir: Path) -> Camera:
    cams = {cid: _check_camera(camera_from_pycolmap(c, model_dir), model_dir) for cid, c in rec.cameras.items()}
    if not cams:
        raise SparsevidError("COLMAP model has no camera", fix="re-run COLMAP", path=model_dir)
    first = next(iter(cams.values()))
    for cam in cams.values():
        same = (cam.model == first.model and (cam.width, cam.height) == (first.width, first.height)
                and np.allclose(cam.params, first.params, rtol=1e-9, atol=1e-12))
        if not same:
            raise SparsevidError(
                f"COLMAP model has {len(cams)} different cameras; frames of one video must share one",
                fix="re-run COLMAP with --ImageReader.single_camera 1", path=model_dir)
    return first


def _find_images_dir(model_dir: Path, names: list[str]) -> Path | None:
    """The ``images`` folder holding ``names[0]``: searched beside the model and up to 3 levels up."""
    cands: list[Path] = []
    for anc in [model_dir, *list(model_dir.parents)[:3]]:
        cands += [anc / "images", anc]
    for c in cands:
        if names and (c / names[0]).is_file():
            return c
    return None


def read_colmap(model_dir: Path, images_dir: Path | None = None) -> Scene:
    """A COLMAP model -> posed :class:`Scene`.

    Registered images become input frames (c2w from COLMAP's world-to-camera pose); images
    in the images folder that the model does not register become ground-truth frames
    without pose. Points3D and their colours go to ``Scene.points`` / ``Scene.point_colors``.

    Args:
        model_dir: folder with cameras/images/points3D (.bin or .txt).
        images_dir: where the image files are; found automatically when None.
    """
    model_dir = Path(model_dir)
    rec = read_reconstruction(model_dir)
    camera = _shared_camera(rec, model_dir)
    images = list(rec.images.values())
    if not images:
        raise SparsevidError("COLMAP model has no images", fix="re-run COLMAP", path=model_dir)
    names = sorted(im.name for im in images)
    if images_dir is None:
        images_dir = _find_images_dir(model_dir, names)
        if images_dir is None:
            root = model_dir.parent.parent if model_dir.parent.name == "sparse" else model_dir.parent
            raise SparsevidError(f"image {names[0]} referenced by the COLMAP model is missing "
                                 f"(looked in {root / 'images'} and beside the model)",
                                 fix="put the images in DATA/images next to DATA/sparse/0", path=model_dir)
    images_dir = Path(images_dir)
    posed: dict[str, np.ndarray | None] = {}
    for im in images:
        path = images_dir / im.name
        if not path.is_file():
            raise SparsevidError(f"image {im.name} referenced by the COLMAP model is missing",
                                 fix=f"restore it in {images_dir} or re-run COLMAP on the images you have",
                                 path=path)
        posed[im.name] = _c2w_of(im, model_dir) if im.has_pose else None
    # images the model does not list (ground truth), in the folders that hold its images (names like cam/f.png)
    folders = sorted({(images_dir / n).parent for n in posed})
    extra = [p for d in folders for p in sorted(d.iterdir())
             if is_image_file(p) and str(p.relative_to(images_dir)) not in posed]
    indexed = index_files([images_dir / n for n in posed] + extra)
    frames, gt = [], []
    for idx, p in indexed:
        rel = str(p.relative_to(images_dir))
        c2w = posed.get(rel)
        fr = Frame(index=idx, image=read_image(p), name=rel, c2w=c2w, path=p)
        (frames if c2w is not None else gt).append(fr)
    check_same_size(frames + gt, images_dir)
    for fr in frames:
        if (fr.width, fr.height) != (camera.width, camera.height):
            raise SparsevidError(
                f"image {fr.name} is {fr.width}x{fr.height} but the COLMAP camera is {camera.width}x{camera.height}",
                fix="use the images COLMAP was run on (not resized copies)", path=fr.path)
    pts = [p for _, p in sorted(rec.points3D.items())]  # by point id (the order they were added)
    points = np.array([p.xyz for p in pts], np.float64).reshape(-1, 3) if pts else None
    colors = np.array([p.color for p in pts], np.uint8).reshape(-1, 3) if pts else None
    idx_by_name = {str(p.relative_to(images_dir)): idx for idx, p in indexed}
    index_of = {im.image_id: idx_by_name[im.name] for im in images if im.name in idx_by_name}  # image id -> frame
    tracks = [np.array([(index_of[e.image_id], *rec.images[e.image_id].points2D[e.point2D_idx].xy)
                        for e in p.track.elements if e.image_id in index_of], np.float64).reshape(-1, 3)
              for p in pts] if pts and any(p.track.length() for p in pts) else None
    fps = read_fps_meta(images_dir, model_dir, *list(model_dir.parents)[:3])
    root = model_dir.parent.parent if model_dir.parent.name == "sparse" else model_dir.parent
    return Scene(frames=frames, camera=camera, fps=fps if fps is not None else Fraction(30), gt_frames=gt,
                 points=points, point_colors=colors, source="colmap", root=root, point_tracks=tracks)


def _unique_names(frames: list[Frame]) -> list[str]:
    names = [Path(f.name).name if f.name else "" for f in frames]
    if len(set(names)) != len(names) or any(not n for n in names):
        names = [f"frame_{f.index:04d}.png" for f in frames]
    return names


def write_colmap(scene: Scene, model_dir: Path, images_dir: Path | None = None,
                 include_gt: bool = True, binary: bool = True) -> Path:
    """Write the posed frames of ``scene`` as a COLMAP model (through pycolmap objects).

    Args:
        scene: needs ``camera`` and ``c2w`` on the frames to write.
        model_dir: output folder for cameras/images/points3D (+ rigs/frames); e.g.
            ``DATA/sparse/0`` or ``DATA/colmap/sparse/0``.
        images_dir: when given, the images are written there too (e.g. ``DATA/images``).
        include_gt: also write ground-truth frames that have a pose.
        binary: ``.bin`` files (default) or ``.txt``.

    Returns:
        ``model_dir``. Each file is replaced atomically.
    """
    import pycolmap

    if scene.camera is None:
        raise SparsevidError("scene has no camera; cannot write a COLMAP model",
                             fix="estimate poses first (sparsevid poses)")
    frames = [f for f in scene.frames + (scene.gt_frames if include_gt else []) if f.c2w is not None]
    if not frames:
        raise SparsevidError("scene has no posed frames; cannot write a COLMAP model",
                             fix="estimate poses first (sparsevid poses)")
    frames = sorted(frames, key=lambda f: f.index)
    names = _unique_names(frames)
    rec = pycolmap.Reconstruction()
    rec.add_camera_with_trivial_rig(camera_to_pycolmap(scene.camera, 1))
    n_pts = 0 if scene.points is None else len(scene.points)
    tracks = scene.point_tracks if scene.point_tracks is not None and len(scene.point_tracks) == n_pts else None
    # the observations (2D points) of each written image, from the tracks: frame index -> [(point, x, y)]
    image_of = {fr.index: image_id for image_id, fr in enumerate(frames, start=1)}
    obs: dict[int, list[tuple[int, float, float]]] = {}
    for j, t in enumerate(tracks or []):
        for k, x, y in np.asarray(t, np.float64).reshape(-1, 3):
            if int(k) in image_of:
                obs.setdefault(int(k), []).append((j, float(x), float(y)))
    elements: dict[int, list[tuple[int, int]]] = {}  # point -> [(image id, 2D point index)]
    for image_id, (fr, name) in enumerate(zip(frames, names), start=1):
        m = cam_from_world_from_c2w(fr.c2w)
        im = pycolmap.Image(name=name, camera_id=1, image_id=image_id)
        mine = obs.get(fr.index, [])
        if mine:
            im.points2D = pycolmap.Point2DList([pycolmap.Point2D(np.array([x, y])) for _, x, y in mine])
            for i, (j, _, _) in enumerate(mine):
                elements.setdefault(j, []).append((image_id, i))
        rec.add_image_with_trivial_frame(im, pycolmap.Rigid3d(pycolmap.Rotation3d(m[:, :3]), m[:, 3]))
    if n_pts:
        cols = scene.point_colors if scene.point_colors is not None else np.full((n_pts, 3), 128)
        for j, (xyz, c) in enumerate(zip(np.asarray(scene.points, np.float64), np.asarray(cols, np.uint8))):
            track = pycolmap.Track()
            for image_id, i in elements.get(j, []):
                track.add_element(image_id, i)
            rec.add_point3D(xyz, track, c)
        if elements:
            rec.update_point_3d_errors()  # the mean reprojection error of each track
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tmp-colmap-", dir=model_dir) as tmp:
        (rec.write_binary if binary else rec.write_text)(tmp)
        for p in sorted(Path(tmp).iterdir()):
            p.replace(model_dir / p.name)
    if images_dir is not None:
        for fr, name in zip(frames, names):
            write_image(Path(images_dir) / name, fr.image)
    return model_dir

