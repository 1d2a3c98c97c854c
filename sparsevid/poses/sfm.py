"""Camera poses and intrinsics from a few frames of one video, with pycolmap (CPU).

The inputs are hard for structure-from-motion: 4 frames, often a forward walk with a small
baseline, through a wide-angle lens. What this module does about it:

* **One shared camera** (``SIMPLE_RADIAL`` by default: focal + one radial term, enough for
  action-cam barrel distortion at this resolution), principal point at the image centre.
* **Focal prior**: ``PoseConfig.focal`` > EXIF (``FocalLengthIn35mmFilm``) > a field-of-view
  prior. The radial term is always refined.
* **A ladder of mapper attempts** (global SfM first, then relaxed incremental SfM with each
  initial pair, then more features, then -- for small frames -- the frames upscaled, so that
  COLMAP's pixel thresholds mean what they mean at full size) -- every candidate model is
  **validated** (all frames registered; every pair's relative rotation agrees with the pair's
  own two-view geometry, which exposes the forward-motion degeneracy where the incremental mapper "registers"
  everything with rotations off by tens of degrees; a slow camera; reprojection error), and the
  best valid model wins, not the first.
* **Focal from the data when the data determines it**: bundle adjustment is re-run with the
  focal held at a range of field-of-view candidates (the radial term rescaled to keep the
  pixel-space distortion). A focal change is accepted only when it lowers the reprojection
  cost significantly (a chi-square test). Under (near) pure translation the focal is not
  observable -- the reconstruction with any focal ``f'`` and ``k' = k (f'/f)^2`` explains the
  images exactly as well -- so the prior is kept and the report says so.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sparsevid.data.scene import Scene
from sparsevid.errors import PoseFailure, SparsevidError
from sparsevid.geometry import rotation_angle_deg
from sparsevid.log import info, warn

#: 35 mm film diagonal in mm (for EXIF ``FocalLengthIn35mmFilm``)
_FILM_DIAGONAL_MM = math.hypot(36.0, 24.0)

#: the lens models the pose stage fits (``PoseConfig.camera_model``)
POSE_CAMERA_MODELS = ("SIMPLE_RADIAL", "RADIAL")


@dataclass
class PoseConfig:
    """Settings of the pose stage (defaults work for 4 frames of a hand-held or action-cam clip).

    Attributes:
        focal: focal length in pixels at the input resolution; overrides EXIF and the prior and
            is held fixed.
        prior_hfov_deg: field of view across the frame's longer side (horizontal for a landscape frame;
            of the pinhole part of the lens) assumed when neither ``focal`` nor EXIF is available. 80 deg
            suits action cams and phone wide lenses; the data overrides it when the motion makes the focal
            observable. A lens's field of view is quoted across the sensor's long side, which is the
            frame's height when the phone is held upright, so a portrait frame gets the same focal
            length in pixels as the same camera's landscape frame.
        camera_model: ``SIMPLE_RADIAL`` (f, cx, cy, k) or ``RADIAL`` (f, cx, cy, k1, k2).
        focal_search: estimate the focal from the data (see module doc) unless ``focal`` or EXIF
            gives it.
        focal_search_hfov_deg: field-of-view candidates of the search (degrees, across the longer side).
        focal_min_chi2: how much (in chi-square units, sum of squared residuals / residual
            variance) the best candidate must beat the prior to replace it.
        focal_min_gain: ... and the relative drop of the mean squared reprojection error it needs.
        max_image_size: longer image side for feature extraction (larger images are downscaled).
        max_num_features: SIFT features per image (first rungs); the second feature set doubles it.
        min_work_side: when neither feature set finds a valid model (or only one not settled: see
            ``settled_fraction``), frames whose longer side is
            below this are tried once more, upscaled (bicubic) by the smallest whole factor that
            brings it to this many pixels; the camera and tracks come back in the input's pixels.
            COLMAP's thresholds are in pixels (RANSAC, track filtering), so on a 424x240 copy of a
            clip they are twice as loose in angle as on the 848x480 original: at 8 of 19 sizes of the
            shared clip from 320 to 720 px wide every attempt failed, and with this rung all 19 get
            poses within 0.33 deg of the reference (BENCHMARKS.md, session 15). 0: never.
        min_pair_inliers: verified matches a frame needs with at least one other frame.
        max_pair_rotation_dev_deg: a model is rejected when the median, over frame pairs, of the
            angle between its relative rotation and the pair's two-view rotation exceeds this, or
        max_pair_rotation_dev_px: ... this many pixels at the model's focal length, whichever is
            larger: the two-view rotations of small frames are noisier by the pixel's angle (26 px
            is 3 deg at the 500 px focal of an 848-px-wide action cam, so full-size frames keep the
            3 deg bar; a 424-px-wide copy of the same clip gets 6 deg).
        max_rotation_speed_deg_s: rejected when consecutive inputs turn faster than this.
        max_reproj_error_px: rejected when the mean reprojection error exceeds this.
        max_corner_distortion: rejected when the model's radial distortion moves the frame's corner by more
            than this fraction of its distance from the centre, either way (``k r^2`` for SIMPLE_RADIAL at the
            corner's normalised radius r, measured in the image, i.e. distorted). The mapping ``u (1 + k u^2)``
            of an undistorted radius u stops growing at ``k u^2 = -1/3``; in terms of the image's radius that is
            ``k r^2 = -4/27`` (-0.148), so a model between -0.148 and -1/3 at the corner folds inside the frame
            and is kept: its canvas ends at the fold (session 37). Our clips' models sit within 0.18, an action
            cam's wide lens included. A 424x240 copy of the shared clip once passed every other check
            with k r^2 = 18 (rotations of 10.7 deg between inputs 0.2 deg apart), and its 3D route was useless
            (BENCHMARKS.md, session 23).
        settled_fraction: a valid model whose frame pairs disagree with their two-view rotations by more than
            this fraction of the tolerance (``max_pair_rotation_dev_deg`` / ``_px``) is kept but does not end
            the search: the remaining rungs and feature sets are tried too, and the best score wins. On small
            frames a model that passes by a hair is often wrong, and the upscaled feature set finds one that
            agrees within a tenth of a degree (BENCHMARKS.md, session 23). 1: the first valid model ends it.
        refocus_min_points_kept: the model re-solved at the focal the search found must keep at least this
            fraction of the points of the model it replaces, or the prior's model stays. The same matches
            re-solved at a focal the data supports triangulate about as many points (the refocused models
            of the harness's clips keep 99.7-101 %). One that leaves almost none is not checked by its
            reprojection error at all (two points fit any camera): on a real clip of cars passing close
            (bikes_passing) the search's f = 1005 px kept 2 of 430 points and passed every other check,
            and its 3D route started from random points (BENCHMARKS.md, session 24). 0: any valid
            refocused model is taken.
        try_all: run every cheap rung and keep the best valid model (True), or stop at the first
            valid one (False, faster).
        pair_init_trials: how many times the incremental mapper tries a rung's named initial pair of
            inputs (``incremental_init_i_j``) before that rung gives up (COLMAP's ``init_num_trials``,
            200 by default; the rungs that let COLMAP pick the pair keep its default, as they stop when
            every pair is tried). A pair that fails for want of parallax (a camera that stands still or
            only turns) fails on every trial: with 200 trials each such rung took 60 s on a 640x360
            clip on 2 cores, and the whole ladder 25 minutes before the 2D route took over
            (BENCHMARKS.md, session 25). A named pair that passes does so on its first trials (every
            model of the 13 harness clips and the demo is the same with 10).
        max_init_pairs: the most rungs per feature set that start the incremental mapper from a named pair of
            inputs (``incremental_init_i_j``), the pairs furthest apart in the inputs' order first. Four inputs have six
            pairs, all tried; 25 inputs have 300, and a clip whose camera goes back and forth (every model
            rejected for rotations that disagree) spent 7 minutes on 160 such rungs with 13 inputs, and would
            have spent over an hour with 25, before the next feature set (a review, BENCHMARKS.md session 43).
            0: every pair.
        num_threads: CPU threads for pycolmap's feature extraction (-1: all cores); with
            ``deterministic`` this is the only multi-threaded step (each image is extracted on its
            own, and the images enter the database in frame order beforehand, so neither the
            features nor the image ids depend on the thread count).
        deterministic: run matching/verification, the mappers and bundle adjustment on one thread,
            with every RANSAC seeded by ``seed``, so that the same input and seed give bit-identical
            poses and points (multi-threaded RANSAC and mappers draw from per-thread random streams
            and sum in a varying order: runs differed by a point or two and in the last digits).
            False: ``num_threads`` everywhere (a little faster on many cores, not repeatable).
        seed: random seed (RANSAC, mapper).
    """

    focal: float | None = None
    prior_hfov_deg: float = 80.0
    camera_model: str = "SIMPLE_RADIAL"
    focal_search: bool = True
    focal_search_hfov_deg: tuple[float, ...] = (40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0)
    focal_min_chi2: float = 25.0
    focal_min_gain: float = 0.02
    max_num_features: int = 8192
    max_image_size: int = 2000
    min_work_side: int = 800
    min_pair_inliers: int = 30
    max_pair_rotation_dev_deg: float = 3.0
    max_pair_rotation_dev_px: float = 26.0
    max_rotation_speed_deg_s: float = 180.0
    max_reproj_error_px: float = 2.0
    max_corner_distortion: float = 1.0 / 3.0
    settled_fraction: float = 0.5
    refocus_min_points_kept: float = 0.5
    try_all: bool = True
    pair_init_trials: int = 10
    max_init_pairs: int = 6
    num_threads: int = -1
    deterministic: bool = True
    seed: int = 0

    @property
    def solver_threads(self) -> int:
        """Threads of matching, mapping and bundle adjustment (1 when ``deterministic``)."""
        if self.deterministic:
            return 1
        return self.num_threads if self.num_threads > 0 else (os.cpu_count() or 1)


# ---------------------------------------------------------------------------------------------
# intrinsics prior
# ---------------------------------------------------------------------------------------------
def focal_from_hfov(width: float, hfov_deg: float) -> float:
    """Pinhole focal length in pixels for a field of view of ``hfov_deg`` across ``width`` pixels."""
    return 0.5 * width / math.tan(math.radians(hfov_deg) / 2)


def exif_focal_px(path: Path | None, width: int, height: int) -> float | None:
    """Focal length in pixels from a JPEG's EXIF ``FocalLengthIn35mmFilm`` (diagonal convention),
    or None when the file has no such tag."""
    if path is None or Path(path).suffix.lower() not in (".jpg", ".jpeg", ".tif", ".tiff"):
        return None
    try:
        from PIL import Image

        with Image.open(path) as im:
            exif = im.getexif()
            f35 = exif.get_ifd(0x8769).get(0xA405) or exif.get(0xA405)
    except Exception:  # unreadable EXIF is not an error: fall back to the prior
        return None
    if not f35 or float(f35) <= 0:
        return None
    return float(f35) / _FILM_DIAGONAL_MM * math.hypot(width, height)


def initial_focal(scene: Scene, cfg: PoseConfig) -> tuple[float, str]:
    """(focal px, source) with source in ``given`` / ``exif`` / ``fov_prior``."""
    w, h = scene.image_size
    if cfg.focal is not None:
        if not cfg.focal > 0:
            raise SparsevidError(f"focal must be > 0 pixels, got {cfg.focal}", fix="pass --focal in pixels")
        return float(cfg.focal), "given"
    f = exif_focal_px(scene.frames[0].path, w, h)
    if f is not None:
        return f, "exif"
    return focal_from_hfov(max(w, h), cfg.prior_hfov_deg), "fov_prior"  # across the longer side


def _colmap_params(model: str, f: float, w: int, h: int, k: float = 0.0) -> list[float]:
    if model == "SIMPLE_RADIAL":
        return [f, w / 2, h / 2, k]
    if model == "RADIAL":
        return [f, w / 2, h / 2, k, 0.0]
    raise SparsevidError(f"unsupported pose camera model {model!r}", fix="use SIMPLE_RADIAL or RADIAL")


# ---------------------------------------------------------------------------------------------
# features and matches
# ---------------------------------------------------------------------------------------------
def work_scale(width: int, height: int, min_work_side: int) -> int:
    """The whole factor the pose stage upscales ``width`` x ``height`` frames by
    (:attr:`PoseConfig.min_work_side`): the smallest that brings the longer side to ``min_work_side``
    pixels, 1 for frames already that large (or ``min_work_side`` 0)."""
    return max(1, math.ceil(min_work_side / max(width, height))) if min_work_side > 0 else 1


@dataclass
class _Work:
    """The temporary COLMAP workspace of one run."""

    root: Path
    image_dir: Path
    names: list[str]  # image file names in frame order
    db: Path
    scale: int = 1  # the images are the frames upscaled this many times (COLMAP works in their pixels)


def _write_images(scene: Scene, root: Path, scale: int = 1) -> _Work:
    import cv2

    from sparsevid.data.images import write_image

    image_dir = root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    names = [f"frame_{fr.index:06d}.png" for fr in scene.frames]
    if len(set(names)) != len(names):
        raise SparsevidError("two input frames have the same index", fix="give each frame its own index")
    for fr, name in zip(scene.frames, names):
        img = fr.image if scale == 1 else cv2.resize(fr.image, (fr.width * scale, fr.height * scale),
                                                    interpolation=cv2.INTER_CUBIC)
        write_image(image_dir / name, img)
    return _Work(root=root, image_dir=image_dir, names=names, db=root / "database.db", scale=scale)


def _extract_and_match(work: _Work, model: str, params: list[float], cfg: PoseConfig,
                       num_features: int, db: Path) -> None:
    """SIFT features of every image into ``db`` (one shared camera) + exhaustive matching with
    geometric verification."""
    import pycolmap

    db.unlink(missing_ok=True)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = model
    reader.camera_params = ",".join(f"{p:.10g}" for p in params)
    ext = pycolmap.FeatureExtractionOptions()
    ext.num_threads = cfg.num_threads
    ext.max_image_size = cfg.max_image_size
    ext.sift.max_num_features = num_features
    if num_features > cfg.max_num_features:  # the "more features" rung: also weaker corners
        ext.sift.peak_threshold = ext.sift.peak_threshold / 2
    # The images enter the database first, in frame order: with several extraction threads,
    # extract_features alone numbers them in the order their features finish, and the image ids
    # decide the pair order of matching and mapping (runs then differed).
    with pycolmap.Database.open(db):  # creates the database file
        pass
    pycolmap.import_images(db, work.image_dir, camera_mode=pycolmap.CameraMode.SINGLE, image_names=work.names,
                           options=reader)
    pycolmap.extract_features(db, work.image_dir, image_names=work.names, camera_mode=pycolmap.CameraMode.SINGLE,
                              reader_options=reader, extraction_options=ext, device=pycolmap.Device.cpu)
    with pycolmap.Database.open(db) as d:  # the focal is a prior, not a guess from the image size
        for cam in d.read_all_cameras():
            cam.has_prior_focal_length = True
            d.update_camera(cam)
    match = pycolmap.FeatureMatchingOptions()
    match.num_threads = cfg.solver_threads
    verify = pycolmap.TwoViewGeometryOptions()
    verify.min_num_inliers = 15
    verify.ransac.random_seed = cfg.seed
    verify.ransac.num_threads = 1
    pycolmap.match_exhaustive(db, matching_options=match, verification_options=verify, device=pycolmap.Device.cpu)


@dataclass
class _Matches:
    """Keypoints and verified matches read back from the database."""

    id_by_name: dict[str, int]
    keypoints: dict[int, np.ndarray]  # image id -> [K, 2] pixel coords
    pairs: dict[tuple[int, int], np.ndarray]  # (id1, id2) -> [M, 2] inlier match indices

    def inliers(self, a: int, b: int) -> int:
        m = self.pairs.get((a, b), self.pairs.get((b, a)))
        return 0 if m is None else len(m)


def _read_matches(db: Path) -> _Matches:
    import pycolmap

    with pycolmap.Database.open(db) as d:
        ids = {im.name: im.image_id for im in d.read_all_images()}
        kps = {i: np.asarray(d.read_keypoints(i))[:, :2].astype(np.float64) for i in ids.values()}
        pairs = {}
        for pid, tvg in zip(*d.read_two_view_geometries()):
            a, b = pycolmap.pair_id_to_image_pair(pid)
            pairs[(int(a), int(b))] = np.asarray(tvg.inlier_matches, dtype=np.uint32).reshape(-1, 2)
    return _Matches(ids, kps, pairs)


def _check_matchable(scene: Scene, work: _Work, m: _Matches, cfg: PoseConfig) -> dict[str, Any]:
    """Raise a clear error for a frame that matches no other frame; return match statistics."""
    ids = [m.id_by_name[n] for n in work.names]
    table = {f"{scene.frames[i].index}-{scene.frames[j].index}": m.inliers(ids[i], ids[j])
             for i in range(len(ids)) for j in range(i + 1, len(ids))}
    for i, fr in enumerate(scene.frames):
        best = max(m.inliers(ids[i], ids[j]) for j in range(len(ids)) if j != i)
        if best < cfg.min_pair_inliers:
            raise PoseFailure(
                f"frame {fr.index} ({fr.name}) cannot be registered: at most {best} verified feature matches "
                f"with any other input frame (need {cfg.min_pair_inliers})",
                fix="use input frames closer in time (more overlap), a scene with more texture, "
                    "or give the focal length with --focal", path=fr.path)
    return table


# ---------------------------------------------------------------------------------------------
# mapping attempts
# ---------------------------------------------------------------------------------------------
def _run_global(work: _Work, db: Path, cfg: PoseConfig):
    import pycolmap

    o = pycolmap.GlobalPipelineOptions()
    o.num_threads = cfg.solver_threads
    o.random_seed = cfg.seed
    o.min_model_size = 2
    o.multiple_models = False
    m = o.mapper
    m.num_threads = cfg.solver_threads
    m.random_seed = cfg.seed
    m.global_positioning.use_gpu = False
    m.bundle_adjustment.ceres.use_gpu = False
    m.bundle_adjustment.refine_focal_length = False  # the focal is decided by the focal search
    m.bundle_adjustment.refine_extra_params = True
    m.min_tri_angle_deg = 0.5  # small baselines
    with tempfile.TemporaryDirectory(dir=work.root) as out:
        recs = pycolmap.global_mapping(db, work.image_dir, out, o)
    return _largest(recs)


def _run_incremental(work: _Work, db: Path, cfg: PoseConfig, init_pair: tuple[int, int] | None = None):
    import pycolmap

    o = pycolmap.IncrementalPipelineOptions()
    o.num_threads = cfg.solver_threads
    o.random_seed = cfg.seed
    o.multiple_models = False
    o.min_model_size = 2
    o.ba_refine_focal_length = False
    o.ba_refine_extra_params = True
    o.mapper.abs_pose_refine_focal_length = False
    o.mapper.init_max_forward_motion = 1.0  # forward walks are the common case
    o.mapper.init_min_tri_angle = 2.0  # small baselines
    o.mapper.init_min_num_inliers = cfg.min_pair_inliers
    o.mapper.abs_pose_min_num_inliers = max(10, cfg.min_pair_inliers // 2)
    o.mapper.filter_min_tri_angle = 0.5
    o.mapper.num_threads = cfg.solver_threads
    o.mapper.random_seed = cfg.seed
    o.triangulation.min_angle = 0.5
    o.triangulation.ignore_two_view_tracks = False
    if init_pair is not None:
        o.init_image_id1, o.init_image_id2 = init_pair
        o.init_num_trials = cfg.pair_init_trials
    with tempfile.TemporaryDirectory(dir=work.root) as out:
        recs = pycolmap.incremental_mapping(db, work.image_dir, out, o)
    return _largest(recs)


def _largest(recs: dict) -> Any:
    if not recs:
        return None
    return max(recs.values(), key=lambda r: (r.num_reg_images(), r.num_points3D()))


def _retriangulate(rec, work: _Work, db: Path, cfg: PoseConfig):
    """More points for the fixed poses (two-view tracks too; 3DGS wants a dense-ish init)."""
    import pycolmap

    o = pycolmap.IncrementalPipelineOptions()
    o.num_threads = cfg.solver_threads
    o.random_seed = cfg.seed
    o.mapper.num_threads = cfg.solver_threads
    o.mapper.random_seed = cfg.seed
    o.triangulation.ignore_two_view_tracks = False
    o.triangulation.min_angle = 0.5
    o.mapper.filter_min_tri_angle = 0.5
    with tempfile.TemporaryDirectory(dir=work.root) as out:
        return pycolmap.triangulate_points(rec, db, work.image_dir, out, clear_points=True, options=o,
                                           refine_intrinsics=False)


def _bundle_adjust(rec, cfg: PoseConfig, refine_focal: bool) -> None:
    import pycolmap

    o = pycolmap.BundleAdjustmentOptions()
    o.refine_focal_length = refine_focal
    o.refine_extra_params = True
    o.refine_principal_point = False
    o.print_summary = False
    o.ceres.loss_function_type = pycolmap.LossFunctionType.CAUCHY
    s = o.ceres.solver_options
    s.num_threads = cfg.solver_threads
    s.max_num_iterations = 100
    s.function_tolerance = 1e-9
    pycolmap.bundle_adjustment(rec, o)


# ---------------------------------------------------------------------------------------------
# diagnostics and validation
# ---------------------------------------------------------------------------------------------
def _c2w(image) -> np.ndarray:
    from sparsevid.data.colmap import c2w_from_cam_from_world

    return c2w_from_cam_from_world(image.cam_from_world().matrix())


def _residuals(rec) -> np.ndarray:
    """[M, 2] reprojection residuals (pixels) of every observation of a 3D point."""
    out = []
    for im in rec.images.values():
        if not im.has_pose:
            continue
        for p in im.points2D:
            if p.has_point3D():
                uv = im.project_point(rec.points3D[p.point3D_id].xyz)
                if uv is not None:
                    out.append(np.asarray(uv) - np.asarray(p.xy))
    return np.asarray(out, np.float64).reshape(-1, 2)


def _two_view_rotations(rec, m: _Matches, ids: list[int], cfg: PoseConfig) -> dict[tuple[int, int], np.ndarray]:
    """Relative rotation (cam j from cam i, [3, 3]) of each well-matched pair from its own
    essential matrix with the model's camera -- independent of the mapper."""
    import pycolmap

    cam = next(iter(rec.cameras.values()))
    opts = pycolmap.TwoViewGeometryOptions()
    opts.compute_relative_pose = True
    opts.ransac.random_seed = cfg.seed
    c = pycolmap.TwoViewGeometryConfiguration
    ok = (c.CALIBRATED, c.PLANAR, c.PANORAMIC, c.PLANAR_OR_PANORAMIC)  # configurations with a rotation
    out = {}
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            a, b = ids[i], ids[j]
            mm = m.pairs.get((a, b))
            if mm is None:
                mm = m.pairs.get((b, a))
                if mm is None:
                    continue
                mm = mm[:, ::-1]
            if len(mm) < cfg.min_pair_inliers:
                continue
            g = pycolmap.estimate_calibrated_two_view_geometry(cam, m.keypoints[a], cam, m.keypoints[b],
                                                               np.ascontiguousarray(mm), opts)
            if g.config in ok and len(g.inlier_matches) >= cfg.min_pair_inliers:
                out[(i, j)] = np.asarray(g.cam2_from_cam1.rotation.matrix())
    return out


def corner_distortion(camera) -> float:
    """How far a COLMAP camera's radial distortion moves the frame's corner, as a fraction of the corner's
    distance from the principal point (``k r^2`` for SIMPLE_RADIAL / RADIAL's ``k1 r^2 + k2 r^4``, r the
    corner's normalised radius; 0 for models without radial terms)."""
    if camera.model.name not in ("SIMPLE_RADIAL", "RADIAL"):
        return 0.0
    f, cx, cy, *ks = (float(x) for x in camera.params)
    corner = max(np.hypot(cx, cy), np.hypot(camera.width - cx, cy), np.hypot(cx, camera.height - cy),
                 np.hypot(camera.width - cx, camera.height - cy))
    r2 = (corner / f) ** 2
    return float(sum(k * r2 ** (i + 1) for i, k in enumerate(ks)))


def _settled(best: dict[str, Any] | None, cfg: PoseConfig) -> bool:
    """Whether the best model so far ends the search (see ``PoseConfig.settled_fraction``)."""
    if best is None:
        return False
    dev, tol = best.get("median_pair_rotation_dev_deg"), best.get("pair_rotation_tolerance_deg")
    return dev is None or tol is None or dev <= cfg.settled_fraction * tol


def _check_focal_searched(refocused: dict[str, Any], focal: float, long_side: float, cfg: PoseConfig) -> None:
    """Mark a valid refocused model invalid when bundle adjustment, refining the focal the search found, widened
    it beyond the widest field of view searched (``PoseConfig.focal_search_hfov_deg``): e.g. 148 deg across a
    161 px frame, where the data said 122 and the prior 80; the pinhole part of a lens the radial models describe
    is not that wide. A narrower one is kept: a telephoto lens is. ``focal`` and ``long_side`` in the same
    pixels."""
    if not refocused["valid"]:
        return
    hfov = math.degrees(2 * math.atan(0.5 * long_side / max(focal, 1e-9)))
    widest = max(cfg.focal_search_hfov_deg)
    if hfov > widest:
        refocused["problems"].append(f"bundle adjustment moved the focal length to {focal:.1f} px, a {hfov:.0f} deg "
                                     f"field of view, wider than the {widest:.0f} deg searched")
        refocused["valid"] = False
        refocused["score"] = float("inf")


def _check_points_kept(refocused: dict[str, Any], before: dict[str, Any], cfg: PoseConfig) -> None:
    """Mark a valid refocused model invalid when it keeps too few of the points of the model it would
    replace (``PoseConfig.refocus_min_points_kept``)."""
    if refocused["valid"] and refocused["points"] < cfg.refocus_min_points_kept * before["points"]:
        refocused["problems"].append(f"keeps {refocused['points']} of {before['points']} points at the new focal "
                                     f"(< {100 * cfg.refocus_min_points_kept:.0f} %): the data does not support it")
        refocused["valid"] = False
        refocused["score"] = float("inf")


def _diagnose(rec, scene: Scene, work: _Work, m: _Matches, cfg: PoseConfig) -> dict[str, Any]:
    """Diagnostics of one candidate model and whether it is valid (``valid``, ``problems``)."""
    ids = [m.id_by_name[n] for n in work.names]
    by_id = {im.image_id: im for im in rec.images.values() if im.has_pose}
    registered = [i in by_id for i in ids]
    d: dict[str, Any] = {"registered": int(sum(registered)), "points": int(rec.num_points3D()),
                         "unregistered_frames": [fr.index for fr, r in zip(scene.frames, registered) if not r]}
    problems = []
    if not all(registered):
        problems.append(f"frames {d['unregistered_frames']} not registered")
    res = _residuals(rec) / work.scale  # in the input's pixels
    d["mean_reproj_error_px"] = float(np.linalg.norm(res, axis=1).mean()) if len(res) else float("nan")
    if not len(res):
        problems.append("no 3D point was triangulated")
    elif d["mean_reproj_error_px"] > cfg.max_reproj_error_px:
        problems.append(f"mean reprojection error {d['mean_reproj_error_px']:.2f} px > {cfg.max_reproj_error_px}")
    if all(registered):
        c2w = np.stack([_c2w(by_id[i]) for i in ids])
        rel = rotation_angle_deg(c2w[:-1], c2w[1:])
        dt = np.diff([scene.time(fr.index) for fr in scene.frames])
        speed = rel / np.maximum(dt, 1e-9)
        d["consecutive_rotation_deg"] = [round(float(x), 3) for x in rel]
        if speed.max() > cfg.max_rotation_speed_deg_s:
            problems.append(f"camera turns {speed.max():.0f} deg/s between inputs (> {cfg.max_rotation_speed_deg_s})")
        devs = {}
        for (i, j), r_ji in _two_view_rotations(rec, m, ids, cfg).items():
            model_ji = c2w[j][:3, :3].T @ c2w[i][:3, :3]
            devs[f"{scene.frames[i].index}-{scene.frames[j].index}"] = float(
                rotation_angle_deg(model_ji[None], r_ji[None])[0])
        d["pair_rotation_dev_deg"] = {k: round(v, 3) for k, v in devs.items()}
        med = float(np.median(list(devs.values()))) if devs else float("nan")
        d["median_pair_rotation_dev_deg"] = med
        focal = float(next(iter(rec.cameras.values())).params[0]) / work.scale  # in the input's pixels
        tol = max(cfg.max_pair_rotation_dev_deg, float(np.rad2deg(cfg.max_pair_rotation_dev_px / max(focal, 1e-6))))
        d["pair_rotation_tolerance_deg"] = round(tol, 3)
        if not devs:
            problems.append("no frame pair has a reliable two-view rotation to check against")
        elif med > tol:
            problems.append(f"relative rotations disagree with two-view geometry by {med:.1f} deg "
                            f"(> {tol:.1f}): degenerate model")
    distortion = corner_distortion(next(iter(rec.cameras.values())))
    d["corner_distortion"] = round(distortion, 4)
    if abs(distortion) > cfg.max_corner_distortion and len(res):  # without points the lens was never fitted
        shown = f"by {100 * distortion:+.0f} %" if abs(distortion) < 10 else "by more than 1000 %"
        problems.append(f"lens distortion moves the frame's corner {shown} "
                        f"(> {100 * cfg.max_corner_distortion:.0f} %): implausible lens")
    d["problems"] = problems
    d["valid"] = not problems
    d["score"] = (d["mean_reproj_error_px"] + d.get("median_pair_rotation_dev_deg", 0.0)) if not problems else float("inf")
    return d


# ---------------------------------------------------------------------------------------------
# focal search
# ---------------------------------------------------------------------------------------------
def _focal_cost(rec, f: float, cfg: PoseConfig) -> tuple[float, int, Any]:
    """Mean squared reprojection error after BA with the focal held at ``f`` (the radial
    term rescaled to keep the pixel-space distortion). Returns (mse, residual count, model)."""
    import pycolmap

    r = pycolmap.Reconstruction(rec)
    cam = next(iter(r.cameras.values()))
    f0 = float(cam.params[0])
    p = np.asarray(cam.params, np.float64).copy()
    p[0] = f
    p[3] *= (f / f0) ** 2
    if len(p) > 4:  # RADIAL k2 scales with f^4
        p[4] *= (f / f0) ** 4
    cam.params = p.tolist()
    for _ in range(2):
        _bundle_adjust(r, cfg, refine_focal=False)
    res = _residuals(r)
    return float((res ** 2).sum(1).mean()), int(res.size), r


def _search_focal(rec, cfg: PoseConfig, width: float) -> tuple[float | None, dict[str, Any]]:
    """The focal the data prefers, or None when it does not beat the current one significantly; ``width``:
    the frame's longer side, across which the candidates' fields of view are measured."""
    cam = next(iter(rec.cameras.values()))
    f_cur = float(cam.params[0])
    mse_cur, n, _ = _focal_cost(rec, f_cur, cfg)
    curve = {}
    for hfov in cfg.focal_search_hfov_deg:
        f = focal_from_hfov(width, hfov)
        curve[round(f, 2)] = _focal_cost(rec, f, cfg)[0]
    f_best = min(curve, key=curve.get)
    if not (n * (mse_cur - curve[f_best]) / max(curve[f_best], 1e-12) > cfg.focal_min_chi2 / 4):
        lo = hi = math.log(f_best)  # the grid shows no clear preference: skip the refinement
    else:  # refine around the best candidate by golden-section search on log f
        lo, hi = math.log(f_best / 1.15), math.log(f_best * 1.15)
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa = fb = float("inf")
    if hi > lo:
        fa, fb = _focal_cost(rec, math.exp(a), cfg)[0], _focal_cost(rec, math.exp(b), cfg)[0]
    for _ in range(6 if hi > lo else 0):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = _focal_cost(rec, math.exp(a), cfg)[0]
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = _focal_cost(rec, math.exp(b), cfg)[0]
    f_opt, mse_opt = (math.exp(a), fa) if fa < fb else (math.exp(b), fb)
    if curve[f_best] <= mse_opt:
        f_opt, mse_opt = f_best, curve[f_best]
    chi2 = n * (mse_cur - mse_opt) / max(mse_opt, 1e-12)
    gain = (mse_cur - mse_opt) / max(mse_cur, 1e-12)
    accept = chi2 > cfg.focal_min_chi2 and gain > cfg.focal_min_gain
    diag = {"current_focal": f_cur, "current_mse": mse_cur, "best_focal": f_opt, "best_mse": mse_opt,
            "residuals": n, "chi2": chi2, "relative_gain": gain, "accepted": bool(accept),
            "curve": {str(k): v for k, v in curve.items()},
            "observable": bool(accept),
            "note": ("the data determines the focal" if accept else
                     "focal not observable from this motion (near pure translation): kept the prior")}
    return (f_opt if accept else None), diag


# ---------------------------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------------------------
def _search_in_input_pixels(search: dict[str, Any], scale: int) -> dict[str, Any]:
    """The focal search's report (:func:`_search_focal`, in the working images' pixels) in the input's pixels."""
    if scale == 1:
        return search
    out = dict(search, current_focal=search["current_focal"] / scale, best_focal=search["best_focal"] / scale,
               current_mse=search["current_mse"] / scale ** 2, best_mse=search["best_mse"] / scale ** 2)
    out["curve"] = {str(round(float(k) / scale, 2)): v / scale ** 2 for k, v in search["curve"].items()}
    return out


def _set_db_camera(db: Path, params: list[float]) -> None:
    import pycolmap

    with pycolmap.Database.open(db) as d:
        for cam in d.read_all_cameras():
            cam.params = params
            cam.has_prior_focal_length = True
            d.update_camera(cam)


def _ladder(m: _Matches, work: _Work, max_pairs: int = 0) -> list[tuple[str, str, Any]]:
    """(name, mapper, init pair) rungs on the current features, cheapest and most robust first; at most
    ``max_pairs`` from named pairs (0: every well-matched pair; ``PoseConfig.max_init_pairs``)."""
    ids = [m.id_by_name[n] for n in work.names]
    rungs: list[tuple[str, str, Any]] = [("global", "global", None), ("incremental_relaxed", "incremental", None)]
    # incremental from each well-matched pair, furthest apart in the inputs' order first: the largest baseline
    pairs = sorted(((i, j) for i in range(len(ids)) for j in range(i + 1, len(ids))), key=lambda p: p[0] - p[1])
    named = [(i, j) for i, j in pairs if m.inliers(ids[i], ids[j]) >= 50]
    for i, j in named[:max_pairs] if max_pairs > 0 else named:
        rungs.append((f"incremental_init_{i}_{j}", "incremental", (ids[i], ids[j])))
    return rungs


def _attempt(name: str, mapper: str, init, work: _Work, db: Path, m: _Matches, scene: Scene,
             cfg: PoseConfig) -> tuple[Any, dict[str, Any]]:
    t0 = time.perf_counter()
    diag: dict[str, Any] = {"name": name}
    try:
        rec = _run_global(work, db, cfg) if mapper == "global" else _run_incremental(work, db, cfg, init)
    except Exception as e:  # pycolmap raises RuntimeError on degenerate input; the ladder goes on
        rec = None
        diag["exception"] = f"{type(e).__name__}: {str(e)[:160]}"
    if rec is None or rec.num_reg_images() < 2:
        diag.update(valid=False, problems=["no model"], registered=0 if rec is None else rec.num_reg_images(),
                    score=float("inf"))
    else:
        try:
            rec = _retriangulate(rec, work, db, cfg)
        except Exception as e:  # keep the mapper's own points
            diag["retriangulate_error"] = f"{type(e).__name__}: {str(e)[:160]}"
        _bundle_adjust(rec, cfg, refine_focal=False)
        diag.update(_diagnose(rec, scene, work, m, cfg))
    diag["seconds"] = round(time.perf_counter() - t0, 3)
    return rec, diag


def _to_scene(rec, scene: Scene, work: _Work, m: _Matches, model: str) -> Scene:
    from sparsevid.data.colmap import camera_from_pycolmap

    cam = camera_from_pycolmap(next(iter(rec.cameras.values())), work.root)
    if work.scale != 1:  # back to the input's pixels (COLMAP's image coordinates scale as they are)
        cam = cam.scaled(1.0 / work.scale)
    by_id = {im.image_id: im for im in rec.images.values()}
    c2ws = np.stack([_c2w(by_id[m.id_by_name[n]]) for n in work.names])
    pts = rec.points3D
    points = np.array([p.xyz for p in pts.values()], np.float64).reshape(-1, 3)
    colors = np.array([p.color for p in pts.values()], np.uint8).reshape(-1, 3)
    frame_of = {m.id_by_name[n]: fr.index for n, fr in zip(work.names, scene.frames)}
    tracks = [np.array([(frame_of[e.image_id], *(np.asarray(by_id[e.image_id].points2D[e.point2D_idx].xy) / work.scale))
                        for e in p.track.elements], np.float64).reshape(-1, 3) for p in pts.values()]
    out = scene.with_poses(cam, c2ws, points, colors, tracks)
    out.source = scene.source or "images"
    return out


def estimate_poses(scene: Scene, cfg: PoseConfig | None = None, colmap_log: list[str] | None = None,
                   work_dir: str | Path | None = None) -> tuple[Scene, dict[str, Any]]:
    """Estimate the shared camera and every input frame's pose.

    Args:
        scene: input frames (>= 2, one size); existing camera/poses are ignored.
        cfg: settings; defaults work.
        colmap_log: if given, COLMAP's own log text (glog lines, Ceres) is appended to it, for
            :func:`save_pose_outputs` to keep as ``colmap.log``; it never reaches the console (but with
            ``--verbose``) nor any file of glog's own. The capture redirects the process's file descriptor 2
            while this runs (:func:`sparsevid.log.capture_native_stderr`; off with
            :func:`sparsevid.log.set_verbose`).
        work_dir: where COLMAP's working folder (``.tmp-poses-*``: images and its database) is made and
            removed again; the commands pass their output folder, so nothing is written outside it and a
            folder left by a killed process is removed by ``--resume`` / ``--overwrite``. None: the
            system's temporary folder.

    Returns:
        (scene with ``camera``, every frame's ``c2w`` (OpenCV axes), ``points`` [N, 3] and
        ``point_colors`` [N, 3] uint8; report dict: registered, points, mean_reproj_error_px,
        camera, focal (value, source, search), attempt (the winner), attempts (diagnostics of
        each), matches (verified matches per frame pair), seconds, threads).

    Raises:
        SparsevidError: a frame matches no other frame, or no attempt gives a valid model.
    """
    from sparsevid.log import capture_native_stderr

    cfg = cfg or PoseConfig()
    # COLMAP/Ceres chatter (glog I/W/E lines, "Eigen failure ... dense Cholesky" of ladder rungs
    # that are expected to fail) goes to a buffer, written as poses/colmap.log by save_pose_outputs;
    # `--verbose` lets it through. pycolmap.logging.minloglevel does not silence it (pycolmap 4.2).
    text: list[str] = []
    no_glog_files()
    try:
        with capture_native_stderr(text):
            scene, report = _estimate(scene, cfg, work_dir)
    finally:
        if colmap_log is not None:
            colmap_log.extend(text)
    report["colmap_log_lines"] = sum(t.count("\n") for t in text)
    return scene, report


def no_glog_files() -> None:
    """Stop COLMAP's glog from writing log files of its own (by default it writes every line to files in
    the system's temporary folder, outside the output folder, and never removes them): an empty
    destination per severity disables glog's file for it. Its stderr lines are unchanged (captured by
    :func:`estimate_poses`)."""
    import pycolmap

    for level in pycolmap.logging.Level.__members__.values():
        pycolmap.logging.set_log_destination(level, "")


def _estimate(scene: Scene, cfg: PoseConfig, work_dir: str | Path | None = None) -> tuple[Scene, dict[str, Any]]:
    import pycolmap

    t_start = time.perf_counter()
    if len(scene.frames) < 2:
        raise SparsevidError(f"pose estimation needs at least 2 input frames, got {len(scene.frames)}",
                             fix="pick at least 2 --keyframes")
    w, h = scene.image_size
    for fr in scene.frames:
        if (fr.width, fr.height) != (w, h):
            raise SparsevidError(f"frame {fr.index} is {fr.width}x{fr.height}, frame {scene.frames[0].index} is {w}x{h}",
                                 fix="use frames of one video", path=fr.path)
    check_pose_config(cfg)
    _check_degenerate(scene)  # seconds, not minutes of mapper attempts, for inputs no mapper can pose
    pycolmap.set_random_seed(cfg.seed)
    f0, f_source = initial_focal(scene, cfg)
    model = cfg.camera_model
    report: dict[str, Any] = {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
                              "threads": {"extraction": cfg.num_threads if cfg.num_threads > 0 else (os.cpu_count() or 1),
                                          "solvers": cfg.solver_threads},
                              "attempts": []}
    timings: dict[str, float] = {}
    up = work_scale(w, h, cfg.min_work_side)
    # (name, features per image, upscaling): the last set only for small frames where the first two found nothing
    feature_sets = [("features", cfg.max_num_features, 1), ("more_features", 2 * cfg.max_num_features, 1)]
    if up > 1:
        feature_sets.append((f"upscaled_x{up}", cfg.max_num_features, up))
    with tempfile.TemporaryDirectory(prefix=".tmp-poses-", dir=work_dir) as tmp:
        works: dict[int, _Work] = {}
        best_rec, best, unmatched = None, None, None
        for fs_name, n_feat, scale in feature_sets:
            if scale not in works:
                works[scale] = _write_images(scene, Path(tmp) / f"x{scale}", scale)
            work = works[scale]
            db = work.root / f"{fs_name}.db"
            t0 = time.perf_counter()
            _extract_and_match(work, model, _colmap_params(model, f0 * scale, w * scale, h * scale), cfg, n_feat, db)
            timings[f"{fs_name}_extract_match"] = time.perf_counter() - t0
            m = _read_matches(db)
            try:
                report["matches" if fs_name == "features" else f"matches_{fs_name}"] = _check_matchable(scene, work, m, cfg)
            except PoseFailure as e:  # a frame without enough matches: the next feature set may find them
                unmatched = unmatched or e
                info(f"poses: {fs_name}: {e.one_line()}")
                continue
            ladder = _ladder(m, work, cfg.max_init_pairs)
            for rung, (name, mapper, init) in enumerate(ladder, 1):
                rec, diag = _attempt(f"{fs_name}/{name}", mapper, init, work, db, m, scene, cfg)
                report["attempts"].append(diag)
                info(f"poses: attempt {diag['name']} ({rung} of {len(ladder)} on these features, "
                     f"{diag['seconds']:.0f} s): {diag.get('registered', 0)}/{len(scene.frames)} registered, "
                     f"{'valid' if diag['valid'] else 'rejected: ' + '; '.join(diag.get('problems', []))}")
                if diag["valid"] and (best is None or diag["score"] < best["score"]):
                    best_rec, best, best_db, best_m, best_rung, best_work = rec, diag, db, m, (name, mapper, init), work
                if _settled(best, cfg) and (not cfg.try_all or mapper == "incremental"):
                    break  # cheap rungs done (global + relaxed incremental), or first valid wanted
            if _settled(best, cfg):
                break
            if best is not None:
                info(f"poses: the best model so far ({best['name']}) agrees with two-view geometry only within "
                     f"{best['median_pair_rotation_dev_deg']:.1f} deg (settled below "
                     f"{cfg.settled_fraction * best['pair_rotation_tolerance_deg']:.1f}): trying on")
        if best is None:
            raise unmatched if unmatched is not None and not report["attempts"] else _failure(scene, report)

        # ---- focal: from the data where it is observable --------------------------------
        focal_info: dict[str, Any] = {"initial": f0, "source": f_source}
        if cfg.focal_search and f_source == "fov_prior":
            t0 = time.perf_counter()
            scale = best_work.scale
            f_new, search = _search_focal(best_rec, cfg, max(w, h) * scale)
            focal_info["search"] = _search_in_input_pixels(search, scale)
            if f_new is not None:
                _set_db_camera(best_db, _colmap_params(model, f_new, w * scale, h * scale,
                                                       float(next(iter(best_rec.cameras.values())).params[3])
                                                       * (f_new / (f0 * scale)) ** 2))
                name, mapper, init = best_rung
                rec2, diag2 = _attempt(f"refocus/{name}", mapper, init, best_work, best_db, best_m, scene, cfg)
                report["attempts"].append(diag2)
                if diag2["valid"]:
                    _bundle_adjust(rec2, cfg, refine_focal=True)
                    diag2.update(_diagnose(rec2, scene, best_work, best_m, cfg))
                    _check_points_kept(diag2, best, cfg)
                    _check_focal_searched(diag2, float(next(iter(rec2.cameras.values())).params[0]),
                                          max(w, h) * scale, cfg)
                    if diag2["valid"]:
                        best_rec, best = rec2, diag2
                        focal_info["source"] = "data"
                info(f"poses: attempt {diag2['name']} (f={f_new / scale:.1f}): {diag2.get('registered', 0)}/"
                     f"{len(scene.frames)} registered, "
                     f"{'valid' if diag2['valid'] else 'rejected: ' + '; '.join(diag2.get('problems', []))}")
                if not diag2["valid"]:
                    focal_info["rejected"] = {"focal": f_new / scale, "problems": diag2.get("problems", [])}
            timings["focal_search"] = time.perf_counter() - t0
        out = _to_scene(best_rec, scene, best_work, best_m, model)
        report["work_scale"] = best_work.scale
    focal_info["final"] = out.camera.fx
    report.update(
        registered=best["registered"], points=best["points"], mean_reproj_error_px=best["mean_reproj_error_px"],
        camera=out.camera.to_dict(), focal=focal_info, attempt=best["name"],
        consecutive_rotation_deg=best.get("consecutive_rotation_deg"),
        median_pair_rotation_dev_deg=best.get("median_pair_rotation_dev_deg"),
        timings={k: round(v, 3) for k, v in timings.items()},
        seconds=round(time.perf_counter() - t_start, 3))
    info(f"poses: {best['registered']}/{len(scene.frames)} frames, {best['points']} points, "
         f"{best['mean_reproj_error_px']:.2f} px, f={out.camera.fx:.1f} ({focal_info['source']}), "
         f"attempt {best['name']}, {report['seconds']:.1f} s")
    if focal_info["source"] == "fov_prior" and "rejected" in focal_info:
        rej = focal_info["rejected"]
        warn(f"the focal length the data suggests ({rej['focal']:.0f} px) gave no valid model "
             f"({'; '.join(rej['problems']) or 'no model'}); using the {cfg.prior_hfov_deg:.0f} deg field-of-view "
             "prior (give --focal if you know it)")
    elif focal_info["source"] == "fov_prior":
        warn(f"focal length not observable from this camera motion; using the {cfg.prior_hfov_deg:.0f} deg "
             "field-of-view prior (give --focal if you know it)")
    return out, report


#: frames smaller than this (pixels, either side) carry too few features to pose
MIN_POSE_SIDE = 64
#: mean absolute difference (grey levels) below which two consecutive inputs count as the same image
SAME_FRAME_MAD = 0.5


def check_pose_config(cfg: PoseConfig) -> None:
    """A one-line error for pose settings the stage cannot use (checked before any work by ``run`` and ``poses``)."""
    from sparsevid.checks import check_positive

    check_positive(cfg.focal, "--focal", "600 (pixels)")
    if cfg.camera_model not in POSE_CAMERA_MODELS:  # else the error came after the output folder was made
        raise SparsevidError(f"--pose.camera-model must be one of {', '.join(POSE_CAMERA_MODELS)}, got "
                             f"{cfg.camera_model!r}", fix="pass e.g. --pose.camera-model SIMPLE_RADIAL")
    check_positive(cfg.pair_init_trials, "--pose.pair-init-trials", "10", integer=True)
    if not isinstance(cfg.max_init_pairs, int) or isinstance(cfg.max_init_pairs, bool) or cfg.max_init_pairs < 0:
        raise SparsevidError(f"--pose.max-init-pairs must be a whole number >= 0, got {cfg.max_init_pairs}",
                             fix="pass e.g. --pose.max-init-pairs 6 (0: every pair)")
    check_positive(cfg.max_num_features, "--pose.max-num-features", "8192", integer=True)
    if not isinstance(cfg.max_image_size, int) or cfg.max_image_size < MIN_POSE_SIDE:
        raise SparsevidError(f"--pose.max-image-size must be a whole number of pixels >= {MIN_POSE_SIDE}, got "
                             f"{cfg.max_image_size}", fix="pass e.g. --pose.max-image-size 2000")
    for flag, values in (("--pose.prior-hfov-deg", (cfg.prior_hfov_deg,)),
                         ("--pose.focal-search-hfov-deg", tuple(cfg.focal_search_hfov_deg))):
        if not values or not all(isinstance(v, (int, float)) and 1.0 <= v < 179.0 for v in values):
            shown = ",".join(f"{v:g}" for v in values) or "nothing"
            raise SparsevidError(f"{flag} must be fields of view between 1 and 179 degrees, got {shown}",
                                 fix=f"pass e.g. {flag} " + ("80" if flag == "--pose.prior-hfov-deg" else
                                                             "40,60,80,100,120"))


def _check_degenerate(scene: Scene) -> None:
    """Raise :class:`PoseFailure` at once for inputs no mapper can pose: frames too small for
    features, or input frames that are all the same image (a camera that does not move)."""
    w, h = scene.image_size
    if min(w, h) < MIN_POSE_SIDE:
        raise PoseFailure(f"the frames are {w}x{h}: too small to find and match features for camera poses",
                          fix=f"use frames at least {MIN_POSE_SIDE} px on each side")
    imgs = [fr.image.astype(np.float32) for fr in scene.frames]
    mad = [float(np.abs(a - b).mean()) for a, b in zip(imgs[:-1], imgs[1:])]
    if max(mad) < SAME_FRAME_MAD:
        raise PoseFailure("the input frames are all the same image: the camera does not move, so there is no "
                          "3D to recover", fix="use frames of a moving camera (or other --keyframes)")


def _failure(scene: Scene, report: dict[str, Any]) -> SparsevidError:
    """The one-line error when no attempt gave a valid model, naming the frames at fault."""
    regs = [a for a in report["attempts"] if a.get("registered", 0) >= 2]
    if regs:
        top = max(regs, key=lambda a: a["registered"])
        missing = top.get("unregistered_frames") or []
        if missing:
            fr = next(f for f in scene.frames if f.index == missing[0])
            return PoseFailure(
                f"frame{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} could not be registered "
                f"({len(report['attempts'])} attempts; best registered {top['registered']}/{len(scene.frames)})",
                fix="use input frames closer in time, a scene with more texture, or give the focal with --focal",
                path=fr.path)
        probs = "; ".join(top.get("problems", []))
        return PoseFailure(f"every pose attempt gave an implausible model ({probs})",
                              fix="give the focal length with --focal, or use input frames closer in time")
    return PoseFailure(f"no frames could be registered ({len(report['attempts'])} attempts)",
                          fix="use input frames closer in time (more overlap), a scene with more texture, "
                              "or give the focal length with --focal")


#: the pose stage's report, written last by :func:`save_pose_outputs`: a poses folder without it is unfinished
POSES_REPORT = "poses_report.json"


def save_pose_outputs(scene: Scene, report: dict[str, Any], out: Path, colmap_log: str = "") -> None:
    """Write a posed scene as ``out/sparse/0`` (COLMAP binary), ``out/transforms.json`` (nerfstudio),
    ``out/images/``, ``out/frames_meta.json`` (the frame rate, which a COLMAP model has no place for: the model
    loads back at the clip's rate, not 30), ``out/poses_report.json`` and ``out/colmap.log`` (``colmap_log``:
    COLMAP's own log lines, captured by :func:`estimate_poses`; none written when empty), so ``out`` loads back
    with ``load_scene``."""
    from sparsevid.data.colmap import write_colmap
    from sparsevid.data.nerfstudio import write_transforms
    from sparsevid.io_utils import atomic_write_text, write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_transforms(scene, out / "transforms.json", write_images=True, include_gt=False)
    write_colmap(scene, out / "sparse" / "0", include_gt=False)
    from sparsevid.data.images import FRAMES_META

    fps = scene.fps
    write_json(out / FRAMES_META, {"fps": f"{fps.numerator}/{fps.denominator}" if fps.denominator != 1
                                   else fps.numerator})
    report = dict(report)
    report["frames"] = {f.name: {"index": f.index, "c2w": np.round(f.c2w, 8).tolist()} for f in scene.frames}
    if colmap_log:
        atomic_write_text(out / "colmap.log", colmap_log)
    write_json(out / POSES_REPORT, report, indent=2)  # last: its presence says the folder is complete
