"""Video files (mp4/mov/mkv/...) decoded with PyAV: every frame becomes a :class:`Frame` and fps is read from the
stream as an exact rational (e.g. 30000/1001).

A frame's index is its time stamp's place on the frame-rate grid (index = time x fps, :func:`stream_fps`): for a
constant-rate video the decode order; for a variable-rate one (a dropped frame, a phone slowing down in dim light)
every frame keeps its time, and the places no frame holds are made like any in-between frame (one warning line).

A window (``--start``/``--end``, :func:`parse_time`) decodes only part of a video: PyAV seeks to
the key frame before the start and decoding stops after the end, so a long video needs no
pre-cutting. Inside a window, frame indices count from the window's first frame time (index 0 is the
first frame at or after ``--start``), so ``--keyframes`` and every output time are relative to the
window start; the times stay exact (index / fps, the stream's rational fps).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from sparsevid.data.audio import AudioSource, first_sound
from sparsevid.data.scene import Frame, Scene
from sparsevid.errors import SparsevidError

#: file extensions read as videos (lower case)
VIDEO_EXTS: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".ts", ".mts", ".m2ts", ".mpg",
                                ".mpeg", ".3gp", ".mxf")


def is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTS


def upright(vf) -> np.ndarray:
    """A decoded PyAV frame -> [H, W, 3] uint8 RGB, turned as players show it (and SDR: an HDR frame is tone-mapped,
    see :mod:`sparsevid.data.hdr`).

    A phone filming upright stores landscape pictures and a display matrix that turns them (``VideoFrame.rotation``:
    degrees counter-clockwise; an iPhone's portrait clip says -90, a quarter turn clockwise, as Chromium and
    QuickTime show it). The turn is applied in quarter turns; a flip in the matrix is not.
    """
    from sparsevid.data.hdr import frame_to_sdr, hdr_transfer

    img = frame_to_sdr(vf) if hdr_transfer(vf) else vf.to_ndarray(format="rgb24")
    turns = round(vf.rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(img, k=turns) if turns else img)


def _say_how_read(path: Path, vf, img: np.ndarray) -> None:
    """One line each for a turned or an HDR video (what :func:`upright` did to its frames)."""
    from sparsevid.data.hdr import REFERENCE_WHITE, hdr_transfer
    from sparsevid.log import info

    turns = round(vf.rotation / 90) % 4
    if turns:
        how = "upside down; its frames are turned 180 degrees" if turns == 2 else \
            "on its side (a phone filming upright); its frames are turned 90 degrees " + \
            ("counter-clockwise" if turns == 1 else "clockwise")
        info(f"{path.name}: stored {how} as players show them ({img.shape[1]}x{img.shape[0]})")
    transfer = hdr_transfer(vf)
    if transfer:
        info(f"{path.name}: HDR video ({transfer}, BT.2020); its frames are tone-mapped to SDR BT.709 (reference white "
             f"{REFERENCE_WHITE:g} cd/m2 -> 100 %, highlights rolled off), and so is the output video")


def _from_before(container, stream, decoded, first: int, fps: Fraction, t0: int):
    """The decoded frames of ``stream`` from one at or before grid position ``first``, after a seek there gave
    ``decoded``. A seek can land past it (a .ts lands on the next key frame; one with a single key frame decodes
    nothing): seek again 2, 8, 32, ... s earlier, and last from the container's start. A window that starts past
    the video's end is not looked for further back (nothing to decode; the caller says so)."""
    tb = stream.time_base
    duration = Fraction(container.duration, 10**6) if container.duration else None
    back = Fraction(2)
    while True:
        decoded, landed = _peek(decoded)
        n0 = None if landed is None or landed.pts is None else round((landed.pts - t0) * tb * fps)
        if n0 is not None and n0 <= first:
            return decoded
        if n0 is None and duration is not None and Fraction(first) / fps > duration:
            return decoded  # beyond the end
        target = Fraction(first - 1) / fps - back
        if target <= 0:
            container.seek(0, backward=True)  # the container's start (a stream seek to its first stamp can land past
            return container.decode(stream)   # a .ts's first key frame)
        container.seek(t0 + int(target / tb), stream=stream, backward=True)
        decoded = container.decode(stream)
        back *= 4


def _peek(frames):
    """(an iterator giving the same items as ``frames``, its first item or None): the first is read ahead."""
    import itertools

    it = iter(frames)
    first = next(it, None)
    return (it if first is None else itertools.chain([first], it)), first


def _report_rate(path: Path, frames: list[Frame], dropped: int, fps: Fraction | None, damaged: bool = False) -> None:
    """Each frame sits at its time stamp's position on the frame-rate grid (index = time x fps). A variable-rate video
    (a dropped frame, a phone slowing down in dim light) leaves positions empty or puts two frames on one: say so in
    one line. ``damaged``: frames of the file did not decode (the caller says so): the empty positions are theirs,
    not a variable rate."""
    held = {f.index for f in frames}
    missing = [k for k in range(frames[0].index, frames[-1].index + 1) if k not in held]
    if not missing and not dropped:
        return
    from sparsevid.log import warn

    rate = float(fps or 30)
    if damaged and missing and not dropped:
        warn(f"{path.name}: {len(missing)} frame time{'s' if len(missing) > 1 else ''} at {rate:.3f} fps "
             f"{'hold' if len(missing) > 1 else 'holds'} no frame (the first: {missing[0]}): frames that did not "
             "decode; sparsevid makes them like any in-between frame")
        return
    parts = []
    if missing:
        span = frames[-1].index - frames[0].index + 1
        parts.append(f"{len(missing)} of its {span} frame times at {rate:.3f} fps hold no frame (the first: "
                     f"{missing[0]}); sparsevid makes them like any in-between frame")
    if dropped:
        parts.append(f"{dropped} frame{'s' if dropped > 1 else ''} fell on a time already taken and "
                     f"{'were' if dropped > 1 else 'was'} left out")
    warn(f"{path.name} has a variable frame rate: " + "; ".join(parts) + " (frame i is shown at i / fps)")


def stream_fps(stream, path: Path | None = None) -> Fraction | None:
    """The stream's frame rate as a Fraction: its average rate, else FFmpeg's guess (``r_frame_rate``), else its base
    rate. A variable-rate stream (a dropped frame, a phone slowing down) averages below its nominal rate: there the
    guess is taken when it lies within 1.5 times the average, so that frames keep their places on the nominal grid,
    or, further from it (a phone that slowed down for most of the clip), when the stream's shortest common frame
    interval (:func:`_shortest_interval_rate`, read from ``path``'s packets) says the same rate: a guess that is a
    multiple of the rate (a field rate) is not taken."""
    avg, guess = getattr(stream, "average_rate", None), getattr(stream, "guessed_rate", None)
    if avg and guess and avg < guess:
        if guess < Fraction(3, 2) * avg:
            return Fraction(guess)
        rate = _shortest_interval_rate(path, stream.index) if path is not None else None
        if rate is not None and abs(rate / float(guess) - 1) < 0.05:
            return Fraction(guess)
    for attr in ("average_rate", "guessed_rate", "base_rate"):
        rate = getattr(stream, attr, None)
        if rate:
            return Fraction(rate)
    return None


def _shortest_interval_rate(path: Path, index: int, max_packets: int = 3000) -> float | None:
    """The rate of the shortest frame interval the video stream ``index`` of ``path`` commonly has (the 10th
    percentile of the intervals between its first ``max_packets`` packets' time stamps; no decoding), or None."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams[index]
            tb = stream.time_base
            pts = []
            for packet in container.demux(stream):
                if packet.pts is not None:
                    pts.append(packet.pts)
                if len(pts) >= max_packets:
                    break
    except Exception:  # the decode that follows says what is wrong with the file
        return None
    steps = np.diff(np.unique(np.asarray(pts, dtype=np.int64)))
    if len(steps) < 2 or not tb:
        return None
    shortest = float(np.percentile(steps, 10)) * float(tb)
    return 1.0 / shortest if shortest > 0 else None


@dataclass(frozen=True)
class TimePoint:
    """A point in a video given on the command line: seconds (``2.5``) or a frame number (``f75``)."""

    text: str
    seconds: Fraction | None = None
    frame: int | None = None

    def first_frame(self, fps: Fraction) -> int:
        """The first source frame at or after this point (a start, inclusive)."""
        if self.frame is not None:
            return self.frame
        return math.ceil(self.seconds * fps - Fraction(1, 10**6))

    def last_frame(self, fps: Fraction) -> int:
        """The last source frame of a window ending here: the frame itself for ``fN`` (inclusive),
        the last frame *before* the time for seconds (exclusive), so ``--start 2.5 --end 3.5`` and
        ``--start f75 --end f104`` are the same 30 frames at 30 fps."""
        if self.frame is not None:
            return self.frame
        return math.ceil(self.seconds * fps - Fraction(1, 10**6)) - 1


def parse_time(text: str | None, flag: str) -> TimePoint | None:
    """``"2.5"`` -> 2.5 s, ``"f75"`` -> frame 75 (of the whole video, counted from 0); None -> None.

    Raises:
        SparsevidError: not a number, or negative -- one line naming ``flag``.
    """
    if text is None:
        return None
    t = str(text).strip()
    fix = f"give seconds (e.g. {flag} 2.5) or a frame number with an f suffix (e.g. {flag} f75)"
    m = re.fullmatch(r"[fF](\d+)", t)
    if m:
        return TimePoint(t, frame=int(m.group(1)))
    try:
        sec = Fraction(t)
    except (ValueError, ZeroDivisionError):
        raise SparsevidError(f"{flag} takes seconds or f<frame>; {t!r} is neither", fix=fix) from None
    if sec < 0:
        raise SparsevidError(f"{flag} must be >= 0, got {t}", fix=fix)
    return TimePoint(t, seconds=sec)


#: the help of ``--start``/``--end`` (here, and ``run``'s flags of ``RunConfig.start``/``end``)
WINDOW_HELP = {
    "start": "video input: decode from here, seconds (2.5) or a frame number (f75); frame indices "
             "(--keyframes, output times) then count from this window's first frame",
    "end": "video input: stop decoding here, seconds (3.5, exclusive) or a frame number (f104, inclusive)",
}


def add_window_args(p) -> None:
    """``--start``/``--end`` on an argparse parser (``poses``, ``inspect``)."""
    p.add_argument("--start", default=None, metavar="T", help=WINDOW_HELP["start"])
    p.add_argument("--end", default=None, metavar="T", help=WINDOW_HELP["end"])


def parse_window(start: str | None, end: str | None) -> tuple[TimePoint | None, TimePoint | None]:
    """Parse ``--start``/``--end``; refuse an ``--end`` not after ``--start`` when both use one unit
    (mixed units are checked against the video's fps when it is read)."""
    a, b = parse_time(start, "--start"), parse_time(end, "--end")
    if a is not None and b is not None:
        if (a.frame is not None and b.frame is not None and b.frame < a.frame) or \
                (a.seconds is not None and b.seconds is not None and b.seconds <= a.seconds):
            raise SparsevidError(f"--end {b.text} is not after --start {a.text}", fix="give an --end later than --start")
    return a, b


def _window_frames(fps: Fraction, start: TimePoint | None, end: TimePoint | None) -> tuple[int, int | None]:
    """(first, last) source frame numbers of the window, ``last`` None: to the end."""
    first = 0 if start is None else start.first_frame(fps)
    last = None if end is None else end.last_frame(fps)
    if last is not None and last < first:
        raise SparsevidError(f"--end {end.text} is not after --start {start.text if start else '0'} "
                             f"(the window would hold no frame at {float(fps):.3f} fps)",
                             fix="give an --end later than --start")
    return first, last


#: decoded frames are held in memory; refuse videos whose frames exceed this (bytes)
MAX_DECODED_BYTES = 6 * 2**30


def read_video(path: Path, max_frames: int | None = None, max_bytes: int = MAX_DECODED_BYTES,
               start: TimePoint | None = None, end: TimePoint | None = None, until: int | None = None) -> Scene:
    """Decode ``path`` into a :class:`Scene` with every frame as an input frame (no poses).

    Args:
        max_frames: stop after this many frames (None: all).
        until: stop after the frame of this index (counted as the scene's indices are): nothing after it is
            decoded or held (:func:`sparsevid.data.load.load_scene` passes the last keyframe: the video ends there).
        max_bytes: error out when the decoded RGB frames would exceed this many bytes (a long
            video should be trimmed to the short clip sparsevid is for).
        start, end: decode only this window (:func:`parse_time`; see the module doc): seek to
            ``start``, stop after ``end``; frame indices then count from the window's first frame.

    Raises:
        SparsevidError: undecodable file; ``end`` not after ``start``; a window beyond the video.
    """
    import av

    path = Path(path)
    fix = "re-encode it (e.g. ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4) or extract PNG frames"
    frames: list[Frame] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                kinds = sorted({s.type for s in container.streams})
                held = f"it holds only {' and '.join(kinds)} streams" if kinds else "it holds no stream"
                raise SparsevidError(f"no video stream in file ({held})", path=path,
                                     fix="pass the video file itself, or a folder of its frames")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            sound = first_sound(container)  # (stream index, description), read while the file is open
            fps = stream_fps(stream, path)
            # frames the container's edit list hides (a clip cut with ffmpeg -ss ... -c copy keeps the packets
            # before the cut) are counted in its header, not decoded: expect no more than its duration holds
            if stream.duration and stream.time_base and fps:
                shown = round(stream.duration * stream.time_base * fps)
            else:
                shown = None
            announced = int(stream.frames or 0)  # from the container header; 0 = unknown
            windowed = start is not None or end is not None
            first, last = _window_frames(fps or Fraction(30), start, end) if windowed else (0, None)
            tb = stream.time_base
            t0 = stream.start_time or 0
            seeked = False
            if first > 0 and tb and fps:
                # the key frame at or before the first frame (one frame early against pts rounding)
                container.seek(t0 + int((Fraction(first - 1) / fps) / tb), stream=stream, backward=True)
                seeked = True
            seen = -1  # the last source frame number decoded
            base = first if windowed else None  # the grid position of index 0
            dropped = 0  # frames that share a grid position with the frame before (the later is dropped)
            stopped = False
            decoded = container.decode(stream)
            if seeked:
                decoded = _from_before(container, stream, decoded, first, fps, t0)
            for count, vf in enumerate(decoded):
                # the frame's position on the stream's frame-rate grid, from its time stamp
                if vf.pts is not None and tb and fps:
                    n = round((vf.pts - t0) * tb * fps)
                elif not seeked:
                    n = count
                else:
                    raise SparsevidError("cannot trim this video: its frames carry no time stamps",
                                         fix="re-encode it (ffmpeg -i IN -c:v libx264 OUT.mp4) or cut it "
                                             "with ffmpeg -ss START -to END", path=path)
                if windowed:
                    seen = max(seen, n)
                    if n < first:
                        continue
                    if last is not None and n > last:
                        break
                if base is None:
                    base = n
                if until is not None and n - base > until:
                    stopped = True  # at the last keyframe, on purpose: not an --end beyond the video
                    break
                if frames and n - base <= frames[-1].index:
                    dropped += 1
                    continue
                if max_frames is not None and len(frames) >= max_frames:
                    break
                img = upright(vf)
                if not frames:
                    _say_how_read(path, vf, img)
                if (len(frames) + 1) * img.nbytes > max_bytes:
                    raise SparsevidError(
                        f"video too long: more than {len(frames)} frames of {img.shape[1]}x{img.shape[0]} "
                        f"(> {max_bytes / 2**30:.1f} GiB decoded)",
                        fix="decode only the part you need: --start / --end (e.g. --start 2.5 --end 3.5), or "
                            "--keyframes, which end the video at the last one",
                        path=path)
                frames.append(Frame(index=n - base, image=img, name=f"frame_{n - base:04d}.png"))
            if windowed:
                rate = fps or Fraction(30)
                if seen >= 0:
                    length = (f"its last frame is f{seen}, at {float(seen / rate):.3f} s (the video ends at "
                              f"{float((seen + 1) / rate):.3f} s, {float(rate):.3f} fps)")
                else:  # the seek went past the end: nothing decoded
                    dur = container.duration / 1e6 if container.duration else None
                    length = f"it is {dur:.3f} s long" if dur else "no frame decoded there"
                if not frames:
                    flag, tp = ("--start", start) if start is not None else ("--end", end)
                    raise SparsevidError(f"{flag} {tp.text} is beyond the video: {length}",
                                         fix=f"give a {flag} inside the video (see sparsevid inspect)", path=path)
                if last is not None and seen < last and max_frames is None and not stopped:
                    raise SparsevidError(f"--end {end.text} is beyond the video: {length}",
                                         fix="give an --end inside the video, or leave --end out (to the end)",
                                         path=path)
    except SparsevidError:
        raise
    except Exception as e:  # av.error.* (InvalidDataError, ...), decoder errors
        raise SparsevidError(f"cannot decode video ({type(e).__name__}: {str(e).strip()[:100]})",
                             fix=fix, path=path) from None
    if not frames:
        raise SparsevidError("video has no decodable frames", fix=fix, path=path)
    audio = None
    if sound is not None and tb and fps:  # frame index 0 (grid position ``base``) on the container's clock
        zero = Fraction(t0) * tb  # the pictures' first time stamp: 0 s as players count
        audio = AudioSource(path, sound[0], zero + Fraction(base) / fps, Fraction(fps), zero, sound[1])
    expected = announced if shown is None or not announced else min(announced, shown)
    short = max_frames is None and until is None and not windowed and 0 < len(frames) + dropped < expected
    _report_rate(path, frames, dropped, fps, damaged=short)
    if short:
        from sparsevid.log import warn

        warn(f"{path}: decoded {len(frames) + dropped} of the {expected} frames its header announces (truncated or "
             f"damaged file?); using frames 0..{frames[-1].index} -> re-encode or re-copy the video to use them all")
    return Scene(frames=frames, camera=None, fps=fps if fps else Fraction(30), source="video", root=path.parent,
                 audio=audio, window_start=base or 0)
