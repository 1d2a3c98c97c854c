"""The scene model: what every stage reads and writes.

Pose convention: ``c2w`` is a [4, 4] float64 camera-to-world matrix with OpenCV camera
axes (x right, y down, z forward), as in COLMAP. Nerfstudio/OpenGL poses are converted
on load and back on write. Time of a frame = ``index / fps`` seconds, with ``fps`` an exact
:class:`~fractions.Fraction` (30000/1001 for NTSC video; see :mod:`sparsevid.data.timebase`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from sparsevid.data.audio import AudioSource
from sparsevid.data.camera import Camera
from sparsevid.data.timebase import fps_fraction

#: the input frames of the 30-frame cases (the embedded demo, the benchmark cases, the synthetic
#: scenes): one about every third of a second at 30 fps; the other frames are held-out ground truth
DEFAULT_KEYFRAMES: tuple[int, ...] = (0, 9, 19, 29)


@dataclass
class Frame:
    """One video frame.

    Attributes:
        index: frame index in the source video (time = index / fps).
        image: [H, W, 3] uint8 RGB.
        name: file name (or ``frame_0009.png`` for frames decoded from a video).
        c2w: [4, 4] float64 camera-to-world (OpenCV axes) or None when unknown.
        path: where the image came from, if a file.
    """

    index: int
    image: np.ndarray
    name: str
    c2w: np.ndarray | None = None
    path: Path | None = None

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass
class Scene:
    """Input frames (sorted by index) sharing one camera, plus optional ground truth and points.

    Attributes:
        frames: the input (key) frames, sorted by index.
        camera: the shared camera, or None until the pose stage estimates it.
        fps: frames per second of the source video, exact (a float or string given here goes
            through :func:`~sparsevid.data.timebase.fps_fraction`: 29.97 -> 30000/1001).
        gt_frames: frames kept only as ground truth for evaluation (no pose needed).
        points: [N, 3] float64 sparse points in world space, or None.
        point_colors: [N, 3] uint8 RGB colours of ``points``, or None.
        source: a short description of where the scene came from (``colmap``, ``nerfstudio``...).
        number_offset: the number in the file names of frame 0: frames named from 1 (``frame_00001.png``) or
            from 100 are numbered from 0 by :func:`~sparsevid.data.load.load_scene`, which sets it (1, 100).
        point_tracks: the SfM observations of ``points`` (one entry per point, same order), or None:
            each an [M, 3] float64 array of (frame index, x, y), (x, y) in pixels of that frame
            (COLMAP convention: pixel centres at +0.5). The pose stage fills it and
            :func:`~sparsevid.data.colmap.write_colmap` writes it as the model's tracks.
        audio: the sound of the video file the frames were decoded from, placed against them
            (:class:`~sparsevid.data.audio.AudioSource`), or None (no video file, or one without sound).
        window_start: the video file's frame number of frame 0 where the frames were decoded from a
            ``--start`` window (their indices count from the window's first frame); 0 otherwise.
    """

    frames: list[Frame]
    camera: Camera | None = None
    fps: Fraction = Fraction(30)
    gt_frames: list[Frame] = field(default_factory=list)
    points: np.ndarray | None = None
    point_colors: np.ndarray | None = None
    source: str = ""
    root: Path | None = None
    point_tracks: list[np.ndarray] | None = None
    number_offset: int = 0
    audio: "AudioSource | None" = None
    window_start: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.fps, Fraction):
            self.fps = fps_fraction(self.fps)

    @property
    def has_poses(self) -> bool:
        return self.camera is not None and all(f.c2w is not None for f in self.frames)

    @property
    def indices(self) -> list[int]:
        return [f.index for f in self.frames]

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the input frames."""
        return self.frames[0].width, self.frames[0].height

    @property
    def first_index(self) -> int:
        """The index of the clip's first frame, input or ground truth."""
        return min(f.index for f in self.frames + self.gt_frames)

    def shifted(self, offset: int) -> "Scene":
        """The scene with every frame index (and every track's frame index) moved by ``offset``."""
        if offset == 0:
            return self
        frames = [replace(f, index=f.index + offset) for f in self.frames]
        gt = [replace(f, index=f.index + offset) for f in self.gt_frames]
        tracks = None if self.point_tracks is None else [
            t + np.array([offset, 0.0, 0.0]) if len(t) else t for t in self.point_tracks]
        return replace(self, frames=frames, gt_frames=gt, point_tracks=tracks,
                       number_offset=self.number_offset - offset, window_start=self.window_start - offset,
                       audio=None if self.audio is None else self.audio.shifted(offset))

    def time(self, index: float) -> float:
        """Seconds from frame 0 to frame ``index`` (float)."""
        return float(index) / float(self.fps)

    def c2ws(self) -> np.ndarray:
        """[N, 4, 4] float64 camera-to-world of the input frames."""
        return np.stack([f.c2w for f in self.frames]).astype(np.float64)

    def images(self) -> np.ndarray:
        """[N, H, W, 3] uint8 input images."""
        return np.stack([f.image for f in self.frames])

    def with_poses(self, camera: Camera, c2ws: np.ndarray, points: np.ndarray | None = None,
                   point_colors: np.ndarray | None = None,
                   point_tracks: list[np.ndarray] | None = None) -> "Scene":
        frames = [replace(f, c2w=np.asarray(c, dtype=np.float64)) for f, c in zip(self.frames, c2ws)]
        return replace(self, frames=frames, camera=camera, points=points, point_colors=point_colors,
                       point_tracks=point_tracks)
