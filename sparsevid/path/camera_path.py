"""The camera path: one camera for every output frame, at the frame's exact time.

The path is a smooth curve through the input (key) cameras:

* position: a natural cubic spline over time (C2; zero curvature at the ends, so 3-4 uneven knots
  give no end wiggle). Measured on ``gopro_sidewalk`` with knots 0, 9, 19, 29 against the
  30 reference poses: natural 0.66 % of the path length mean error, not-a-knot 0.68 %, clamped 2.2 %;
* rotation: :class:`scipy.spatial.transform.RotationSpline` (continuous angular rate and
  acceleration); 0.045 deg mean error on the same clip;
* intrinsics ``K``: piecewise linear over time (constant with one shared camera).

The path passes **exactly** through every input camera: a query time equal to a knot time (exactly
as fractions, or within 1 ns as floats) returns that knot's matrices unchanged.

Outside the knots (``extrapolation``):
  * ``"linear"`` (default): constant velocity and constant angular rate taken from the spline at
    the end knot; the extra rotation is capped at ``max_extrapolation_deg`` so a noisy end rate
    cannot spin the camera;
  * ``"hold"``: the end camera is repeated.

Output frame times (:class:`PathConfig`): output frame ``k`` is at ``k / fps`` seconds from the
start of the source video (frame 0), and input frame ``i`` is at ``i / scene_fps``. Frame rates are
exact fractions (29.97 -> 30000/1001), so with the same fps every output frame lands exactly on a
source frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal, Sequence

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.spatial.transform import Rotation, RotationSpline, Slerp

from sparsevid.errors import SparsevidError
from sparsevid.geometry import interpolate_pose  # noqa: F401  (re-exported by sparsevid.path)
from sparsevid.data.timebase import fps_fraction

Extrapolation = Literal["linear", "hold"]
TimeLike = float | Fraction

#: query times this close (seconds) to a knot time snap to the knot's exact camera
_SNAP_S = 1e-9
#: the most output frames a camera path may have (every frame is held in memory: 100000 frames of 848x480 are
#: 120 GB); more means frame numbers that are not frame numbers, or a wrong frame rate
MAX_FRAMES = 100_000


@dataclass
class PathConfig:
    """Which output frames to render.

    Precedence for the number of output frames ``N``:
      1. ``num_frames`` when set;
      2. else ``round(fps * duration)`` when ``duration`` (seconds) is set;
      3. else the span of the source video from frame 0 through the last input frame:
         ``duration = (last_index + 1) / scene_fps`` -- 30 frames for inputs 0, 9, 19, 29 at 30 fps.

    Attributes:
        fps: output frame rate (float, ``Fraction`` or ``"30000/1001"``); None -> the scene's fps.
        duration: output length in seconds, or None.
        num_frames: number of output frames, or None.
        extrapolation: ``"linear"`` or ``"hold"`` for frames before the first / after the last input: the camera
            moves on (and the video carries the end input on at its optical flow's velocity,
            :func:`sparsevid.fuse.stage.fuse_frames`) or stays (the video repeats the end input).
        max_extrapolation_deg: cap on the rotation added by linear extrapolation.
    """

    fps: float | Fraction | str | None = None
    duration: float | None = None
    num_frames: int | None = None
    extrapolation: Extrapolation = "linear"
    max_extrapolation_deg: float = 10.0

    def output_fps(self, scene_fps: TimeLike) -> Fraction:
        return fps_fraction(self.fps if self.fps is not None else scene_fps)

    def frame_count(self, scene_fps: TimeLike, last_index: int) -> int:
        """``N``, following the precedence above."""
        fps = self.output_fps(scene_fps)
        if self.num_frames is not None:
            n = int(self.num_frames)
        elif self.duration is not None:
            n = round(fps * Fraction(self.duration).limit_denominator(1_000_000))
        else:
            n = round(fps * Fraction(int(last_index) + 1) / fps_fraction(scene_fps))
        if n < 1:
            raise SparsevidError(f"the camera path would have {n} frames",
                                 fix="set num_frames >= 1 or a longer duration")
        if n > MAX_FRAMES:
            raise SparsevidError(f"the camera path would have {n} frames (the last input frame is number "
                                 f"{last_index} at {float(fps_fraction(scene_fps)):g} fps), more than {MAX_FRAMES}",
                                 fix="number the input frames 0, 1, 2, ... (file names), or set --fps, "
                                     "--path.num-frames or --path.duration")
        return n

    def frame_times(self, scene_fps: TimeLike, last_index: int) -> list[Fraction]:
        """Exact time (seconds, as fractions) of every output frame: ``k / fps``."""
        fps = self.output_fps(scene_fps)
        return [Fraction(k) / fps for k in range(self.frame_count(scene_fps, last_index))]

    def frame_positions(self, scene_fps: TimeLike, last_index: int) -> list[Fraction]:
        """Exact position of every output frame in the source video (``time * scene_fps``; source
        frame ``i`` is at ``i``)."""
        sf = fps_fraction(scene_fps)
        return [t * sf for t in self.frame_times(sf, last_index)]


def source_index_of(position: Fraction | int) -> int | None:
    """The source frame at an exact ``position`` (see :meth:`PathConfig.frame_positions`), or None
    when the position falls between two source frames."""
    p = Fraction(position)
    return int(p) if p.denominator == 1 else None


@dataclass
class PathFrames:
    """The cameras of every output frame.

    Attributes:
        times: [T] exact times in seconds (fractions).
        fps: the output frame rate.
        c2ws: [T, 4, 4] float64 camera-to-world (OpenCV axes).
        Ks: [T, 3, 3] float64 intrinsics of the input camera model (not of the canvas).
        source_index: [T] float64 position of each frame in the source video (time * scene_fps).
        is_input: [T] bool, True where the frame is exactly an input camera.
        source_index_exact: [T] the source frame each output frame shows, exactly (its time is that
            frame's time), or None for in-between times (see :func:`source_index_of`); empty
            when not known.
    """

    times: list[Fraction]
    fps: Fraction
    c2ws: np.ndarray
    Ks: np.ndarray
    source_index: np.ndarray
    is_input: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    source_index_exact: list[int | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def seconds(self) -> np.ndarray:
        return np.array([float(t) for t in self.times])


class CameraPath:
    """A smooth camera path through key cameras at given times.

    Args:
        times: [N] knot times in seconds (floats or exact fractions), distinct.
        c2ws: [N, 4, 4] camera-to-world of the knots (OpenCV axes).
        Ks: [N, 3, 3] intrinsics of the knots, or one [3, 3] shared by all, or None (identity).
        extrapolation, max_extrapolation_deg: see the module docstring.
    """

    def __init__(self, times: Sequence[TimeLike], c2ws: np.ndarray, Ks: np.ndarray | None = None,
                 extrapolation: Extrapolation = "linear", max_extrapolation_deg: float = 10.0):
        c2ws = np.asarray(c2ws, dtype=np.float64)
        n = len(times)
        if n == 0 or c2ws.shape != (n, 4, 4):
            raise SparsevidError(f"camera path needs one [4, 4] pose per time, got {n} times and "
                                 f"poses of shape {c2ws.shape}")
        if extrapolation not in ("linear", "hold"):
            raise SparsevidError(f"unknown extrapolation {extrapolation!r}", fix="use 'linear' or 'hold'")
        if Ks is None:
            Ks = np.eye(3)
        Ks = np.asarray(Ks, dtype=np.float64)
        if Ks.shape == (3, 3):
            Ks = np.broadcast_to(Ks, (n, 3, 3))
        if Ks.shape != (n, 3, 3):
            raise SparsevidError(f"camera path needs one [3, 3] K per time, got shape {Ks.shape}")
        order = sorted(range(n), key=lambda i: times[i])
        self.times: list[TimeLike] = [times[i] for i in order]
        self.t = np.array([float(x) for x in self.times])
        if n > 1 and np.min(np.diff(self.t)) <= 0:
            raise SparsevidError("camera path has two key cameras at the same time",
                                 fix="give each input frame a distinct frame index")
        self.c2ws = c2ws[order].copy()
        self.Ks = np.array(Ks[order])
        self.extrapolation = extrapolation
        self.max_extrapolation_rad = math.radians(max_extrapolation_deg)
        R = self.c2ws[:, :3, :3]
        if np.any(np.linalg.det(R) < 0):
            raise SparsevidError("camera path: a key pose's rotation is a mirror (determinant -1: one axis flipped)",
                                 fix="give proper rotations (check the camera axes convention of the poses)")
        if not np.allclose(R @ np.swapaxes(R, 1, 2), np.eye(3), atol=1e-5):
            raise SparsevidError("camera path: a key pose's rotation is not orthonormal",
                                 fix="check the poses (c2w must be a rigid transform)")
        self._rots = Rotation.from_matrix(R)
        if n >= 2:
            self._pos = CubicSpline(self.t, self.c2ws[:, :3, 3], bc_type="natural" if n > 2 else "not-a-knot")
            self._rot = RotationSpline(self.t, self._rots) if n > 2 else Slerp(self.t, self._rots)
            self._end_rates = (self._angular_rate(self.t[0]), self._angular_rate(self.t[-1]))

    # ---- constructors --------------------------------------------------------------------
    @classmethod
    def from_indices(cls, indices: Sequence[int], fps: TimeLike, c2ws: np.ndarray,
                     Ks: np.ndarray | None = None, **kw) -> "CameraPath":
        """Knots at source frame ``indices`` of a video at ``fps`` (time = index / fps, exact)."""
        f = fps_fraction(fps)
        return cls([Fraction(int(i)) / f for i in indices], c2ws, Ks, **kw)

    @classmethod
    def from_scene(cls, scene, config: PathConfig | None = None) -> "CameraPath":
        """The path through a posed :class:`~sparsevid.data.scene.Scene`'s input frames."""
        config = config or PathConfig()
        if not scene.has_poses:
            raise SparsevidError("the scene has no camera poses yet", fix="run the pose stage first")
        return cls.from_indices(scene.indices, scene.fps, scene.c2ws(), scene.camera.K,
                                extrapolation=config.extrapolation,
                                max_extrapolation_deg=config.max_extrapolation_deg)

    # ---- evaluation ----------------------------------------------------------------------
    def at(self, times: Sequence[TimeLike] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cameras at ``times`` [T] (seconds) -> (c2w [T, 4, 4] float64, K [T, 3, 3] float64)."""
        qs = list(np.atleast_1d(np.asarray(times, dtype=object)))
        tq = np.array([float(q) for q in qs], dtype=np.float64)
        T = len(tq)
        out = np.tile(np.eye(4), (T, 1, 1))
        if len(self.t) == 1:
            out[:] = self.c2ws[0]
            return out, np.broadcast_to(self.Ks[0], (T, 3, 3)).copy()
        t0, t1 = self.t[0], self.t[-1]
        inside = (tq >= t0) & (tq <= t1)
        if inside.any():
            ti = tq[inside]
            out[inside, :3, :3] = self._rot(ti).as_matrix()
            out[inside, :3, 3] = self._pos(ti)
        for side, mask in (("before", tq < t0), ("after", tq > t1)):
            if mask.any():
                out[mask] = self._extrapolate(tq[mask], side)
        # exact knots
        for j, q in enumerate(qs):
            k = self._knot_of(q, tq[j])
            if k is not None:
                out[j] = self.c2ws[k]
        Ks = np.stack([np.stack([np.interp(tq, self.t, self.Ks[:, r, c]) for c in range(3)], -1)
                       for r in range(3)], -2)
        return out, Ks

    def frames(self, config: PathConfig | None = None, scene_fps: TimeLike = 30,
               last_index: int | None = None) -> PathFrames:
        """The cameras of every output frame of ``config`` (see :class:`PathConfig`).

        ``last_index`` (the last input frame's index) defaults to ``round(last knot time * scene_fps)``.
        """
        config = config or PathConfig()
        sf = fps_fraction(scene_fps)
        if last_index is None:
            last_index = round(Fraction(self.times[-1]) * sf) if isinstance(self.times[-1], Fraction) \
                else round(self.t[-1] * float(sf))
        times = config.frame_times(sf, last_index)
        c2ws, Ks = self.at(times)
        is_input = np.array([self._knot_of(q, float(q)) is not None for q in times])
        return PathFrames(times=times, fps=config.output_fps(sf), c2ws=c2ws, Ks=Ks,
                          source_index=np.array([float(q * sf) for q in times]), is_input=is_input,
                          source_index_exact=[source_index_of(q * sf) for q in times])

    # ---- internals -----------------------------------------------------------------------
    def _knot_of(self, q: TimeLike, qf: float) -> int | None:
        k = int(np.argmin(np.abs(self.t - qf)))
        kt = self.times[k]
        if isinstance(q, Fraction) and isinstance(kt, Fraction):
            return k if q == kt else None
        return k if abs(self.t[k] - qf) <= _SNAP_S else None

    def _angular_rate(self, t: float, h: float = 1e-4) -> np.ndarray:
        """World-frame angular rate [3] (rad/s) of the rotation spline at knot-end time ``t``."""
        lo, hi = max(t - h, self.t[0]), min(t + h, self.t[-1])
        r = self._rot([lo, hi])
        return (r[1] * r[0].inv()).as_rotvec() / (hi - lo)

    def _extrapolate(self, tq: np.ndarray, side: str) -> np.ndarray:
        """c2w [T, 4, 4] for times outside the knots."""
        k = 0 if side == "before" else -1
        base = self.c2ws[k]
        out = np.tile(base, (len(tq), 1, 1))
        if self.extrapolation == "hold":
            return out
        dt = tq - self.t[k]
        vel = self._pos(self.t[k], 1)
        out[:, :3, 3] = base[:3, 3] + dt[:, None] * vel[None]
        rv = dt[:, None] * self._end_rates[0 if side == "before" else 1][None]
        ang = np.linalg.norm(rv, axis=1, keepdims=True)
        rv = np.where(ang > self.max_extrapolation_rad, rv * self.max_extrapolation_rad / np.maximum(ang, 1e-12), rv)
        out[:, :3, :3] = (Rotation.from_rotvec(rv) * self._rots[k]).as_matrix()
        return out


