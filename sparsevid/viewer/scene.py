"""What the viewer shows, without a server: an output folder read into :class:`ViewerScene`, the
Gaussians as viser splat arrays, the path cameras as frustum poses, the live CPU render of a path
camera, and the pose report / quality estimate as markdown. Every function here is pure (or reads
files only), so the tests need no viser.

Conventions: ``c2w`` is camera-to-world with OpenCV axes (x right, y down, z forward), as viser's
cameras and frustums use; ``cameras.json`` stores the OpenGL ``transform_matrix`` (y and z negated).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sparsevid.errors import SparsevidError
from sparsevid.report.html import RunFolder, interrupted_text

#: degree-0 spherical-harmonic constant (RGB = 0.5 + C0 * sh0)
SH_C0 = 0.28209479177387814
#: long side (pixels) of the live render, small enough to be interactive on a CPU
RENDER_LONG_SIDE = 320


@dataclass
class PathCamera:
    """One camera of the output path (one output frame)."""

    index: int
    time: float
    c2w: np.ndarray              # [4, 4] OpenCV axes
    K: np.ndarray                # [3, 3] at (width, height)
    width: int
    height: int
    is_input: bool = False
    source_index: float | None = None

    @property
    def fov_y(self) -> float:
        """Vertical field of view in radians."""
        return 2.0 * math.atan(self.height / (2.0 * float(self.K[1, 1])))

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def wxyz(self) -> np.ndarray:
        """Rotation of :attr:`c2w` as a unit quaternion (w, x, y, z)."""
        return rotation_to_wxyz(self.c2w[:3, :3])

    @property
    def position(self) -> np.ndarray:
        return np.asarray(self.c2w[:3, 3], dtype=np.float64)


@dataclass
class ViewerScene:
    """An output folder as the viewer sees it (see :func:`load_output`)."""

    out: Path
    folder: RunFolder
    gaussians: dict | None = None        # raw parameters from train/point_cloud.ply (torch tensors)
    ply_path: Path | None = None
    cameras: list[PathCamera] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # what is missing, in words

    @property
    def num_frames(self) -> int:
        return max(self.folder.num_frames, len(self.cameras))

    @property
    def has_3d(self) -> bool:
        return self.gaussians is not None and bool(self.cameras)

    def camera_at(self, k: int) -> PathCamera | None:
        return self.cameras[k] if 0 <= k < len(self.cameras) else None

    def time_at(self, k: int) -> float:
        cam = self.camera_at(k)
        return cam.time if cam is not None else float(k / self.folder.out_fps)

    def is_input(self, k: int) -> bool:
        cam = self.camera_at(k)
        if cam is not None:
            return cam.is_input
        s = self.folder.source_index(k)
        return s is not None and s in set(self.folder.input_indices)

    def frame(self, k: int) -> np.ndarray | None:
        """Output frame ``k`` (``OUT/frames/frame_XXXX.png``), None when not written (yet)."""
        return self.folder.frame(k)


def rotation_to_wxyz(R: np.ndarray) -> np.ndarray:
    """[3, 3] rotation -> unit quaternion (w, x, y, z), w >= 0."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_quat()
    q = np.array([w, x, y, z])
    return -q if q[0] < 0 else q


def opengl_to_opencv(m: np.ndarray) -> np.ndarray:
    """c2w with OpenGL camera axes -> OpenCV axes (negate the y and z columns; its own inverse)."""
    m = np.array(m, dtype=np.float64)
    m[..., :3, 1:3] *= -1.0
    return m


def path_cameras(cameras: dict) -> list[PathCamera]:
    """``cameras.json`` content -> one :class:`PathCamera` per output frame (in frame order)."""
    w, h = int(cameras["w"]), int(cameras["h"])
    out = []
    for k, fr in enumerate(cameras.get("frames", [])):
        K = np.array([[float(fr.get("fl_x", cameras["fl_x"])), 0.0, float(fr.get("cx", cameras["cx"]))],
                      [0.0, float(fr.get("fl_y", cameras["fl_y"])), float(fr.get("cy", cameras["cy"]))],
                      [0.0, 0.0, 1.0]])
        src = fr.get("source_index")
        out.append(PathCamera(index=int(fr.get("frame_index", k)), time=float(fr.get("time", 0.0)),
                              c2w=opengl_to_opencv(np.asarray(fr["transform_matrix"], dtype=np.float64)),
                              K=K, width=w, height=h, is_input=bool(fr.get("is_input", False)),
                              source_index=None if src is None else float(src)))
    return out


def load_output(out: str | Path) -> ViewerScene:
    """Read an output folder (finished or still running): run.json, quality.json, cameras.json,
    poses/poses_report.json, frames/, train/point_cloud.ply -- whatever exists. Missing parts are
    listed in :attr:`ViewerScene.notes`; a folder that holds none of them is an error."""
    from sparsevid.gaussians.ply import load_ply

    out = Path(out)
    if not out.is_dir():
        raise SparsevidError("output folder not found", path=out, fix="give the folder of `sparsevid run -o OUT`")
    folder = RunFolder.read(out)
    scene = ViewerScene(out=out, folder=folder)
    if folder.cameras is not None:
        try:
            scene.cameras = path_cameras(folder.cameras)
        except (KeyError, TypeError, ValueError) as e:
            scene.notes.append(f"cameras.json is unreadable ({e!r}): no camera path")
    run = folder.run if isinstance(folder.run, dict) else {}
    status = run.get("status")
    if interrupted_text(run):
        scene.notes.append(f"the run was {interrupted_text(run)}")
    elif status == "failed":
        scene.notes.append(f"the run failed: {run.get('error') or 'see run.json'}")
    ply = out / "train" / "point_cloud.ply"
    ply_note = False
    if ply.is_file():
        try:
            scene.gaussians = load_ply(ply)
            scene.ply_path = ply
        except SparsevidError as e:
            scene.notes.append(f"train/point_cloud.ply is unreadable ({e.message}): no Gaussians and no live render")
            ply_note = True
    rep = folder.pose_report
    failed = isinstance(rep, dict) and rep.get("failed")
    two_d = failed or (run.get("config") or {}).get("fuse", {}).get("mode") == "2d"
    if scene.gaussians is None and not scene.cameras and run.get("inputs_only"):
        scene.notes.append("every output frame is an input frame, written as it is: no camera path and no "
                           "Gaussians, only the frames")
    elif scene.gaussians is None and not scene.cameras and two_d and status in (None, "done", "reporting"):
        scene.notes.append("2D-only run: no camera path and no Gaussians, only the output frames"
                           + (f" (the pose stage failed: {failed})" if failed else " (--fuse-mode 2d)"))
    elif scene.gaussians is None and not scene.cameras and not ply_note:
        scene.notes.append("no Gaussians, camera path or frames yet (a run still in its first stages?)"
                           if not folder.num_frames and folder.run is None else
                           "no Gaussians and no camera path" + (" yet" if status in (None, "interrupted") else ""))
    else:
        if scene.gaussians is None and not ply_note:
            scene.notes.append("no train/point_cloud.ply (yet): no Gaussians and no live render")
        if not scene.cameras:
            scene.notes.append("no cameras.json (yet): no camera path")
    if not folder.num_frames:
        scene.notes.append("no output frames (yet) in frames/")
    if (folder.run is None and folder.cameras is None and scene.gaussians is None and not folder.num_frames
            and folder.poses_report is None):
        raise SparsevidError("not a sparsevid output folder (no run.json, cameras.json, frames/ or "
                             "train/point_cloud.ply)", path=out, fix="give the folder of `sparsevid run -o OUT`")
    return scene


# ---------------------------------------------------------------------------------------------
# Gaussians
# ---------------------------------------------------------------------------------------------
def _np(v) -> np.ndarray:
    return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)


def splat_arrays(params: dict) -> dict[str, np.ndarray]:
    """Raw Gaussian parameters (as :func:`~sparsevid.gaussians.ply.load_ply` returns them: log
    scales, logit opacities, (w, x, y, z) quats, SH) -> the arrays of viser's
    ``add_gaussian_splats``: ``centers`` [N, 3], ``covariances`` [N, 3, 3] (``R S^2 R^T``),
    ``rgbs`` [N, 3] in 0..1 (SH degree 0: ``0.5 + C0 sh0``), ``opacities`` [N, 1] in 0..1, float32.
    Gaussians holding a NaN/inf are left out."""
    means = _np(params["means"]).astype(np.float64).reshape(-1, 3)
    n = len(means)
    q = _np(params["quats"]).astype(np.float64).reshape(n, 4)
    s = np.exp(_np(params["scales"]).astype(np.float64).reshape(n, 3))
    op = 1.0 / (1.0 + np.exp(-_np(params["opacities"]).astype(np.float64).reshape(n)))
    sh0 = _np(params["sh0"]).astype(np.float64).reshape(n, -1, 3)[:, 0, :]
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    w, x, y, z = q.T
    R = np.stack([np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
                  np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
                  np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], 1)
    M = R * s[:, None, :]                       # R diag(s)
    cov = M @ M.transpose(0, 2, 1)
    rgb = np.clip(0.5 + SH_C0 * sh0, 0.0, 1.0)
    ok = np.isfinite(means).all(1) & np.isfinite(cov).reshape(n, -1).all(1) & np.isfinite(rgb).all(1) \
        & np.isfinite(op)
    return {"centers": means[ok].astype(np.float32), "covariances": cov[ok].astype(np.float32),
            "rgbs": rgb[ok].astype(np.float32), "opacities": op[ok, None].astype(np.float32)}


# ---------------------------------------------------------------------------------------------
# cameras
# ---------------------------------------------------------------------------------------------
def frustum_scale(cameras: list[PathCamera], centers: np.ndarray | None = None) -> float:
    """A frustum size that suits the scene: about the step between consecutive path cameras (so
    neighbours do not overlap much), at most a quarter of the median distance from the cameras to
    the Gaussians' median; for a path that does not move, that quarter (or 0.1)."""
    if not cameras:
        return 0.1
    pos = np.stack([c.position for c in cameras])
    far = None
    if centers is not None and len(centers):
        d = float(np.median(np.linalg.norm(pos - np.median(centers, axis=0), axis=1)))
        far = 0.25 * d if np.isfinite(d) and d > 0 else None
    steps = np.linalg.norm(np.diff(pos, axis=0), axis=1) if len(pos) > 1 else np.zeros(0)
    steps = steps[steps > 1e-9]
    near = 0.8 * float(np.median(steps)) if len(steps) else None
    if near is not None and far is not None:
        return min(near, far)
    return near or far or 0.1


def up_direction(cameras: list[PathCamera]) -> np.ndarray:
    """The world's up: the mean of the cameras' up axes (-y in OpenCV axes), unit length."""
    if not cameras:
        return np.array([0.0, 0.0, 1.0])
    up = -np.mean([c.c2w[:3, 1] for c in cameras], axis=0)
    n = float(np.linalg.norm(up))
    return up / n if n > 1e-9 else np.array([0.0, 0.0, 1.0])


def render_size(width: int, height: int, long_side: int = RENDER_LONG_SIDE) -> tuple[int, int]:
    """(w, h) scaled so the long side is at most ``long_side`` (never upscaled), at least 1 px."""
    s = min(1.0, long_side / max(width, height))
    return max(1, round(width * s)), max(1, round(height * s))


def render_view(params: dict, cam: PathCamera, long_side: int = RENDER_LONG_SIDE,
                background: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """The live render of the Gaussians from path camera ``cam`` with sparsevid's own rasterizer on
    the CPU, at long side ``long_side`` (pinhole; the output frames also undo the lens model, so
    small differences at the borders are expected) -> [h, w, 3] uint8."""
    import torch

    from sparsevid.gaussians.rasterize import rasterize

    w, h = render_size(cam.width, cam.height, long_side)
    sx, sy = w / cam.width, h / cam.height
    K = cam.K.copy()
    K[0] *= sx
    K[1] *= sy

    def t(v):
        return (v.detach() if torch.is_tensor(v) else torch.as_tensor(np.asarray(v))).to("cpu", torch.float32)

    sh = torch.cat([t(params["sh0"]), t(params["shN"])], 1) if "shN" in params else t(params["sh0"])
    degree = int(round(math.sqrt(sh.shape[1]))) - 1
    viewmat = torch.from_numpy(np.linalg.inv(cam.c2w)).float()[None]
    with torch.no_grad():
        img, _, _ = rasterize(t(params["means"]), t(params["quats"]), torch.exp(t(params["scales"])),
                              torch.sigmoid(t(params["opacities"])), sh, viewmat,
                              torch.from_numpy(K).float()[None], w, h, sh_degree=degree,
                              backgrounds=torch.tensor([background], dtype=torch.float32), backend="cpu")
    return (img[0].clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


def fit_long_side(img: np.ndarray, long_side: int) -> np.ndarray:
    """``img`` shrunk (area filter) so its long side is at most ``long_side``."""
    import cv2

    h, w = img.shape[:2]
    if max(h, w) <= long_side:
        return img
    nw, nh = render_size(w, h, long_side)
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)


# ---------------------------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------------------------
def _f(v, digits: int = 2, unit: str = "") -> str:
    if v is None:
        return "–"
    try:
        return f"{float(v):.{digits}f}{unit}"
    except (TypeError, ValueError):
        return str(v)


def _md_table(rows: list[tuple[str, str]]) -> str:
    return "| | |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


def pose_markdown(scene: ViewerScene) -> str:
    """The pose report (run.json ``poses`` or ``poses/poses_report.json``) as markdown."""
    rep, f = scene.folder.pose_report, scene.folder
    if rep is None:
        cfg = (f.run or {}).get("config") or {}
        if (cfg.get("fuse") or {}).get("mode") == "2d":
            return ("**Camera poses**\n\nNo poses were needed: the video was made by the 2D route alone "
                    "(--fuse-mode 2d).")
        if scene.cameras or (f.run or {}).get("status") == "done":
            given = cfg.get("poses_from") or "the input"
            return f"**Camera poses**\n\nNot estimated: they came from {given}."
        return "**Camera poses**\n\nNo pose report (yet)."
    if rep.get("failed"):
        return (f"**Camera poses**\n\nThe pose stage failed: {rep['failed']}\n\n"
                "The video was made by the 2D route (optical flow) alone.")
    focal, cam = rep.get("focal") or {}, rep.get("camera") or {}
    n_in = len(f.input_indices) or None
    rows = [("cameras registered", f"{rep.get('registered', '–')}" + (f" of {n_in}" if n_in else "")),
            ("points", str(rep.get("points", "–"))),
            ("reprojection error", _f(rep.get("mean_reproj_error_px"), 2, " px")),
            ("focal length", _f(focal.get("final"), 1, " px")),
            ("focal source", str(focal.get("source") or "–")),
            ("attempt kept", str(rep.get("attempt") or "–"))]
    if cam:
        rows.append(("camera model", f"{cam.get('model', '?')} {cam.get('width', '?')}x{cam.get('height', '?')}"))
    if rep.get("seconds") is not None:
        rows.append(("time", _f(rep.get("seconds"), 1, " s")))
    return "**Camera poses**\n\n" + _md_table(rows)


def quality_markdown(scene: ViewerScene) -> str:
    """The quality estimate (``quality.json`` / run.json ``quality_estimate``) as markdown, with the
    measured held-out scores when ``metrics.json`` exists."""
    q, m = scene.folder.quality, scene.folder.metrics
    if not q:
        return "**Quality estimate**\n\nNone (yet): written at the end of a run."
    measured = (m or {}).get("heldout") or {}
    rows = [("route", str(q.get("route") or "–")),
            ("est. held-out PSNR", _f(q.get("psnr_heldout"), 2, " dB")
             + (f" (measured {_f(measured.get('psnr'), 2, ' dB')})" if measured.get("psnr") is not None else "")),
            ("est. held-out SSIM", _f(q.get("ssim_heldout"), 3)
             + (f" (measured {_f(measured.get('ssim'), 3)})" if measured.get("ssim") is not None else "")),
            ("leave-one-out PSNR", _f(q.get("loo_psnr"), 2, " dB")),
            ("3D gain", _f(q.get("gain_3d"), 3))]
    return "**Quality estimate** (leave-one-out, no ground truth)\n\n" + _md_table(rows)


def frame_caption(scene: ViewerScene, k: int) -> str:
    """One line about output frame ``k``: its time, source frame and whether it is an input."""
    t = scene.time_at(k)
    cam = scene.camera_at(k)
    src = cam.source_index if cam is not None else scene.folder.source_index(k)
    s = f"frame {k} of {scene.num_frames}, t = {t:.3f} s"
    if src is not None:
        s += f", source frame {float(src):g}"
        window = scene.folder.window
        if window is not None and window[0]:  # a --start window: the video's own number too
            s += f" (frame {float(src) + window[0]:g} of the video)"
    if scene.is_input(k):
        s += " — **input frame**"
    return s
