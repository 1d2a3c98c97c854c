"""Video files (mp4/mov/mkv/...) decoded with PyAV: every frame becomes a :class:`Frame`
(index = position in decode order) and fps is read from the stream as an exact rational
(e.g. 30000/1001)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from sparsevid.data.scene import Frame, Scene
from sparsevid.errors import SparsevidError

#: file extensions read as videos (lower case)
VIDEO_EXTS: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


def is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTS


def stream_fps(stream) -> Fraction | None:
    """The stream's frame rate as a Fraction (average rate, else guessed, else base rate)."""
    for attr in ("average_rate", "guessed_rate", "base_rate"):
        rate = getattr(stream, attr, None)
        if rate:
            return Fraction(rate)
    return None


#: decoded frames are held in memory; refuse videos whose frames exceed this (bytes)
MAX_DECODED_BYTES = 6 * 2**30


def read_video(path: Path, max_frames: int | None = None, max_bytes: int = MAX_DECODED_BYTES) -> Scene:
    """Decode ``path`` into a :class:`Scene` with every frame as an input frame (no poses).

    Args:
        max_frames: stop after this many frames (None: all).
        max_bytes: error out when the decoded RGB frames would exceed this many bytes (a long
            video should be trimmed to the short clip sparsevid is for).
    """
    import av

    path = Path(path)
    fix = "re-encode it (e.g. ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4) or extract PNG frames"
    frames: list[Frame] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SparsevidError("no video stream in file", fix=fix, path=path)
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = stream_fps(stream)
            announced = int(stream.frames or 0)  # from the container header; 0 = unknown
            for i, vf in enumerate(container.decode(stream)):
                if max_frames is not None and i >= max_frames:
                    break
                img = np.ascontiguousarray(vf.to_ndarray(format="rgb24"))
                if (i + 1) * img.nbytes > max_bytes:
                    raise SparsevidError(
                        f"video too long: more than {i} frames of {img.shape[1]}x{img.shape[0]} "
                        f"(> {max_bytes / 2**30:.1f} GiB decoded)",
                        fix="trim it to the short clip you need, e.g. ffmpeg -ss 2.5 -t 1 -i IN OUT.mp4",
                        path=path)
                frames.append(Frame(index=i, image=img, name=f"frame_{i:04d}.png"))
    except SparsevidError:
        raise
    except Exception as e:  # av.error.* (InvalidDataError, ...), decoder errors
        raise SparsevidError(f"cannot decode video ({type(e).__name__}: {str(e).strip()[:100]})",
                             fix=fix, path=path) from None
    if not frames:
        raise SparsevidError("video has no decodable frames", fix=fix, path=path)
    if max_frames is None and 0 < len(frames) < announced:
        from sparsevid.log import warn

        warn(f"{path}: decoded {len(frames)} of the {announced} frames its header announces (truncated or damaged "
             f"file?); using frames 0..{len(frames) - 1} -> re-encode or re-copy the video to use them all")
    return Scene(frames=frames, camera=None, fps=fps if fps else Fraction(30), source="video", root=path.parent)
