"""Video and frame files: H.264 MP4 through PyAV (no system ffmpeg), PNG frames, all written atomically."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from sparsevid.errors import SparsevidError
from sparsevid.io_utils import atomic_save, atomic_write_bytes
from sparsevid.data.images import read_image  # noqa: F401  (re-exported: frames read as the input's are)
from sparsevid.data.timebase import fps_fraction
from sparsevid.data.audio import DecodedAudio
from sparsevid.video.audio import AudioTrack

#: x264's presets, fastest to slowest (the same quality at a smaller file the slower)
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
#: the colour signalled in the H.264 stream: the matrix PyAV's RGB -> YUV conversion uses (BT.601, limited range),
#: so that a player converts back with the same one. Untagged, players guess by frame size, and an HD frame gets
#: BT.709: in Chromium a 1280x720 clip's green (40, 180, 60) came back as (29, 160, 61) (BENCHMARKS.md, session 22).
#: The primaries and transfer are those of ordinary camera video (BT.709).
COLOUR_TAGS = "colorprim=bt709:transfer=bt709:colormatrix=smpte170m:range=tv"


@dataclass
class VideoConfig:
    """The output MP4: H.264 (libx264, High profile, yuv420p), which every browser, phone and editor plays.

    Attributes:
        crf: x264's constant rate factor, 1-51: lower is more faithful to the frames and a larger file
            (0, lossless, needs a profile that browsers and phones do not play, so it is refused). 12: x264's
            usual "visually lossless" 18 took 0.03-3.2 dB of held-out PSNR against the frames of our clips (most on
            small frames, and on a still camera's faithful clip) and a tenth of the sharpness; 12 gets back up to
            1.1 dB of that (0.17 on the shared clip at 424x240) for about twice the size (848x480: 1.1 MB per
            second; BENCHMARKS.md, session 22).
        preset: x264's preset (encoding speed against file size at the same quality).
        audio: carry a video input's sound over to video.mp4 (AAC, 64 kb/s a channel): the part under the output
            frames, in step with them. Inputs that are not a video file have none.
    """

    crf: int = 12
    preset: str = "medium"
    audio: bool = True


_FRAME_RE = re.compile(r"^frame_(\d+)\.png$")


def _check_frames(frames: Sequence[np.ndarray]) -> tuple[int, int]:
    if len(frames) == 0:
        raise SparsevidError("no frames to write")
    h, w = frames[0].shape[:2]
    for i, f in enumerate(frames):
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3 or f.shape[:2] != (h, w):
            raise SparsevidError(f"frame {i} is {f.dtype} {f.shape}, expected uint8 [{h}, {w}, 3] like frame 0")
    return w, h


def pad_edges(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad [H, W, 3] to [height, width, 3] by repeating the last row/column (every source pixel is kept)."""
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img
    return np.pad(img, ((0, height - h), (0, width - w), (0, 0)), mode="edge")


#: BT.601 luma weights of R, G, B (the matrix :data:`COLOUR_TAGS` names)
_KR, _KB = 0.299, 0.114


def rgb_to_yuv420p(img: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 RGB (H, W even) -> [H * 3 / 2, W] uint8 planar YUV 4:2:0 (Y, then U, then V: PyAV's and
    ffmpeg's ``yuv420p`` layout), BT.601 limited range (Y 16-235, U and V 16-240).

    Each chroma sample is the mean of its 2x2 block's four, computed before rounding, and every value is rounded
    to nearest. ffmpeg's own conversion (swscale, behind PyAV's ``VideoFrame.reformat``) spreads colour across
    neighbouring blocks (a blue 2x2 block on grey: Cb 212 instead of 240, and 142 instead of 128 in the blocks above
    and below) and rounds luma less exactly (0.24 levels off on average): through x264 at CRF 12 its frames came
    back 0.04-0.9 dB less faithful under every decoder tried (nearest or bilinear chroma, either siting; OpenCV's),
    most on small frames and saturated colours (BENCHMARKS.md, session 26)."""
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or img.shape[0] % 2 or img.shape[1] % 2:
        raise ValueError(f"expected uint8 [H, W, 3] with H and W even, got {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    x = img.astype(np.float32)
    luma = _KR * x[..., 0] + (1.0 - _KR - _KB) * x[..., 1] + _KB * x[..., 2]  # 0..255
    cb = (x[..., 2] - luma) * (224.0 / 255.0 / (2.0 * (1.0 - _KB)))
    cr = (x[..., 0] - luma) * (224.0 / 255.0 / (2.0 * (1.0 - _KR)))

    def block_mean(c: np.ndarray) -> np.ndarray:
        return c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)) + 128.0

    out = np.empty((h * 3 // 2, w), np.uint8)
    out[:h] = np.clip(np.rint(16.0 + luma * (219.0 / 255.0)), 0, 255)
    out[h:].reshape(2, -1)[:] = np.clip(np.rint(np.stack([block_mean(cb).ravel(), block_mean(cr).ravel()])), 0, 255)
    return out


def check_video_config(cfg: VideoConfig) -> None:
    """One-line :class:`SparsevidError` for settings x264 refuses or that make a file players refuse."""
    if not isinstance(cfg.crf, int) or not 1 <= cfg.crf <= 51:
        raise SparsevidError(f"--video.crf must be a whole number from 1 to 51, got {cfg.crf}",
                             fix="pass e.g. --video.crf 12 (lower: more faithful, larger; 18: x264's visually "
                                 "lossless; 0, lossless, makes a file browsers and phones do not play)")
    if cfg.preset not in X264_PRESETS:
        raise SparsevidError(f"--video.preset must be one of {', '.join(X264_PRESETS)}, got {cfg.preset!r}",
                             fix="pass e.g. --video.preset medium")


#: the encoded picture's width is a multiple of this (the extra columns, copies of the last one, are cropped off
#: in the stream's header, as a 1080-row video is coded as 1088 rows): with a colour row that fills its
#: buffer's line, x264 gives the same file for the same frames. Otherwise (a 424-sample chroma row in a
#: 432-byte line) it read the line's unset padding bytes, and two encodings of the same frames differed by up
#: to 20 levels (BENCHMARKS.md, session 38)
CODED_WIDTH_MULTIPLE = 64


#: x264's instruction sets named as its ``asm`` parameter takes them (cumulative: "AVX2" includes AVX, FMA3, BMI2 and
#: the SSE levels), and the speed hints its own detection sets on such a CPU
X264_WITHOUT_AVX512 = "AVX2,SSE2Fast,Cache64"


@functools.lru_cache(maxsize=1)
def x264_asm() -> str:
    """The ``x264-params`` entry that keeps x264 off its AVX-512 code on a CPU that has it (empty elsewhere).

    On such a CPU (measured on an AMD EPYC with avx512f) x264's AVX-512 path coded the same frames into different
    files from one encoding to the next in a process (424x240: 4 files over 8 encodings, up to 16 grey levels
    apart decoded; 160x90: 3), and into other bits than its AVX2 path even when it repeated itself; with AVX2 as the
    highest set, every size gave one file, and 848x480 the same bits as before (BENCHMARKS.md, session 39). The
    instruction sets are read from ``/proc/cpuinfo``; where that is missing or the CPU lacks any of AVX2, FMA3,
    BMI1, BMI2 (which the "AVX2" set enables), x264 detects its own."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    if "avx512f" in flags and {"avx2", "fma", "bmi1", "bmi2"} <= flags:
        return ":asm=" + X264_WITHOUT_AVX512
    return ""


def write_video(frames: Sequence[np.ndarray], path: str | Path, fps: float | Fraction = 30,
                crf: int = VideoConfig.crf, preset: str = VideoConfig.preset, announce_padding: bool = True,
                audio: DecodedAudio | None = None) -> Path:
    """Write T x [H, W, 3] uint8 RGB frames as an H.264 (libx264, yuv420p) MP4.

    ``audio``: the sound under these frames (:func:`sparsevid.data.audio.read_sound`), written beside them as AAC,
    interleaved with the pictures (:mod:`sparsevid.video.audio`).

    The RGB -> YUV conversion is BT.601 (limited range, :func:`rgb_to_yuv420p`), and the stream says so
    (:data:`COLOUR_TAGS`), so players show the frames' colours at every frame size. The index comes first
    (``movflags=+faststart``), so the file plays while it downloads.

    ``fps`` is stored exactly as a rational (29.97 -> 30000/1001; see
    :func:`~sparsevid.data.timebase.fps_fraction`); frame ``k`` has pts ``k`` in a ``1/fps`` time base.
    The same frames give the same file (see :data:`CODED_WIDTH_MULTIPLE` and :func:`x264_asm`).
    Odd widths/heights are padded to even by repeating the last row/column (yuv420p needs even sizes; a decoder
    shows the extra row/column), with an info line
    naming ``path`` unless ``announce_padding`` is off (a video made for a page, not for the user).
    The file is written to a temporary file beside ``path`` and renamed into place.
    """
    import av

    _check_frames(frames)
    check_video_config(VideoConfig(crf=crf, preset=preset))
    rate = fps_fraction(fps)
    path = Path(path)
    h, w = frames[0].shape[:2]
    if (h % 2 or w % 2) and announce_padding:
        from sparsevid.log import info

        info(f"{path.name}: the {w}x{h} frames are padded to {w + w % 2}x{h + h % 2} (H.264 in yuv420p needs even "
             "sizes; the last row/column is repeated, the frames are kept as they are)")

    def _write(tmp: Path) -> None:
        # faststart: the index (moov) before the data, so a browser plays a file served over the web at once
        with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            height, width = h + h % 2, w + w % 2
            coded = -(-width // CODED_WIDTH_MULTIPLE) * CODED_WIDTH_MULTIPLE
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = coded, height
            stream.pix_fmt = "yuv420p"
            stream.time_base = 1 / rate
            stream.codec_context.time_base = 1 / rate
            crop = f":crop-rect=0,0,{coded - width},0" if coded != width else ""  # decoders show width x height
            stream.options = {"crf": str(int(crf)), "preset": preset, "x264-params": COLOUR_TAGS + crop + x264_asm()}
            track = AudioTrack(container, audio) if audio is not None else None
            for k, img in enumerate(frames):
                if track is not None:  # the sound up to this frame's end, beside it in the file
                    track.feed_until(Fraction(k + 1) / rate)
                vf = av.VideoFrame.from_ndarray(rgb_to_yuv420p(pad_edges(img, height, coded)), format="yuv420p")
                vf.pts = k
                vf.time_base = 1 / rate
                for packet in stream.encode(vf):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
            if track is not None:
                track.feed_until(None)

    try:
        return atomic_save(path, _write)
    except SparsevidError:
        raise
    except Exception as e:  # PyAV/ffmpeg errors -> one line; a full disk as everywhere else
        import errno

        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
            from sparsevid.outdir import os_error

            raise os_error(e, path, "write the video") from None
        raise SparsevidError(f"could not write the video: {e}", path=path,
                             fix="check the folder is writable and has free space") from e


def read_video(path: str | Path) -> tuple[list[np.ndarray], Fraction]:
    """Decode every frame of a video -> (T x [H, W, 3] uint8 RGB, turned upright as players show them (see
    :func:`sparsevid.data.video.upright`), fps as a Fraction)."""
    import av

    from sparsevid.data.video import upright

    path = Path(path)
    if not path.is_file():
        raise SparsevidError("video not found", path=path, fix="check the path")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(30)
            frames = [upright(f) for f in container.decode(stream)]
    except Exception as e:
        raise SparsevidError(f"could not decode the video: {e}", path=path,
                             fix="give an MP4/MOV/MKV file or a folder of frames") from e
    return frames, Fraction(rate)


def encode_png(img: np.ndarray) -> bytes:
    """[H, W, 3] uint8 RGB -> PNG bytes."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))
    if not ok:
        raise SparsevidError("could not encode a PNG")
    return buf.tobytes()


def write_image(path: str | Path, img: np.ndarray) -> Path:
    """Write one [H, W, 3] uint8 RGB image as PNG, atomically."""
    return atomic_write_bytes(path, encode_png(img))


def write_frames(frames: Sequence[np.ndarray], directory: str | Path, start: int = 0) -> list[Path]:
    """Write frames as ``directory/frame_0000.png ...`` (each file atomically).

    Stale ``frame_NNNN.png`` files from an earlier, longer run (indices past the new last frame)
    are removed, so that a folder written from ``start`` 0 holds exactly these frames; frames before
    ``start`` are kept (a video written in chunks, each with its ``start``).
    """
    _check_frames(frames)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [write_image(directory / f"frame_{start + k:04d}.png", img) for k, img in enumerate(frames)]
    last = start + len(frames) - 1
    for old in directory.iterdir():
        m = _FRAME_RE.match(old.name)
        if m and int(m.group(1)) > last:
            old.unlink()
    return paths


_IMAGE_EXT = (".png", ".jpg", ".jpeg")


def read_frames(directory: str | Path) -> dict[int, np.ndarray]:
    """Read a folder of images -> {frame index: [H, W, 3] uint8}.

    The index is the last number in each file name (``frame_0012.png`` -> 12) when every name has
    one and they are distinct; otherwise the position in sorted order.
    """
    directory = Path(directory)
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in _IMAGE_EXT)
    if not files:
        raise SparsevidError("no PNG/JPEG images in the folder", path=directory,
                             fix="point at a folder of frames or a video file")
    nums = [re.findall(r"\d+", p.stem) for p in files]
    if all(nums) and len({int(n[-1]) for n in nums}) == len(files):
        idx = [int(n[-1]) for n in nums]
    else:
        idx = list(range(len(files)))
    return {i: read_image(p) for i, p in sorted(zip(idx, files))}
