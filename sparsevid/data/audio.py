"""A video input's sound: where it lies against the frames, and its samples under a span of output frames (the data
stage's part; :mod:`sparsevid.video.audio` encodes them into ``video.mp4``).

The video and its sound share the container's clock: a frame's time stamp and an audio sample's time stamp are
seconds on one clock. :class:`AudioSource` holds the clock time of the scene's frame 0 (``read_video`` sets it,
with ``--start`` and the frame-rate grid applied); the output frame ``k`` is at ``k / fps`` from it, so the output's
``N`` frames span ``[start, start + N / fps)`` of the source's sound (:meth:`AudioSource.span`, read by
:func:`read_sound`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

#: the sample rates AAC codes (MPEG-4 audio's sampling frequency table); any other is resampled to 48 kHz
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
#: decoding starts this far before the span (seconds): a seek lands on a packet at or before the time asked
SEEK_MARGIN = Fraction(1, 2)


@dataclass(frozen=True)
class AudioSource:
    """A video file's sound, placed against a scene's frames.

    Attributes:
        path: the video file.
        stream: the index (in the container) of the audio stream.
        start: the container's clock time (seconds) of the scene's frame 0.
        fps: the frame rate the sound is placed by: the file's (frame ``i`` is at ``start + i / fps``). A scene
            re-timed by ``--fps`` has another rate, and its sound no longer matches its frames
            (:meth:`matches`).
        clock_zero: the container's clock time of the file's first picture (``.ts`` files start far from 0),
            0 s as players count: the lines the run prints give times from it.
        description: what the stream is, e.g. ``"aac 48 kHz stereo"``.
    """

    path: Path
    stream: int
    start: Fraction
    fps: Fraction
    clock_zero: Fraction = Fraction(0)
    description: str = ""

    def shifted(self, offset: int) -> "AudioSource":
        """The same sound for a scene whose frame indices all moved by ``offset`` (:meth:`Scene.shifted`)."""
        return replace(self, start=self.start - Fraction(offset) / self.fps)

    def matches(self, fps: Fraction) -> bool:
        """Whether frames at ``fps`` are in step with this sound (not re-timed by ``--fps``)."""
        return Fraction(fps) == self.fps

    def span(self, first_time: Fraction, duration: Fraction) -> "AudioClip":
        """The part of the sound under output frames from ``first_time`` (seconds from frame 0) lasting
        ``duration`` seconds."""
        return AudioClip(self, self.start + Fraction(first_time), Fraction(duration))


@dataclass(frozen=True)
class AudioClip:
    """``duration`` seconds of ``source``'s sound from the clock time ``start``."""

    source: AudioSource
    start: Fraction
    duration: Fraction

    @property
    def file_times(self) -> tuple[float, float]:
        """(start, end) in seconds from the file's first picture."""
        a = self.start - self.source.clock_zero
        return float(a), float(a + self.duration)


def describe_stream(stream) -> str | None:
    """``"aac 48 kHz stereo"`` for a PyAV audio stream; None where PyAV has no decoder for it."""
    ctx = getattr(stream, "codec_context", None)
    if ctx is None:
        return None
    try:
        rate = f"{ctx.sample_rate / 1000:g} kHz" if ctx.sample_rate else "unknown rate"
        layout = getattr(getattr(ctx, "layout", None), "name", None) or f"{ctx.channels} channels"
        return f"{ctx.name} {rate} {layout}"
    except Exception:  # a stream FFmpeg half knows: no sound, never a failed load
        return None


def first_sound(container) -> tuple[int, str] | None:
    """(stream index, description) of the first audio stream of an open PyAV ``container`` that PyAV can decode;
    None where there is none."""
    for stream in container.streams.audio:
        desc = describe_stream(stream)
        if desc is not None:
            return stream.index, desc
    return None


@dataclass
class DecodedAudio:
    """Planar float samples, ready for the AAC encoder.

    Attributes:
        samples: [C, S] float32 in [-1, 1], C 1 (mono) or 2 (stereo; more channels are mixed down to two with a
            mixing matrix scaled so that the mix does not clip).
        rate: samples per second (one AAC codes).
        sound_span: (first, last) seconds of the span that hold the file's sound (the rest is silence: a sound that
            starts after the span does, or ends before it); None: none does.
    """

    samples: np.ndarray
    rate: int
    sound_span: tuple[float, float] | None = None

    @property
    def layout(self) -> str:
        return "mono" if self.samples.shape[0] == 1 else "stereo"


#: a span starting this far (seconds) into the file or later is decoded from a seek; an earlier one from the
#: stream's first sample, whose time stamp is exact (Matroska/WebM round every packet's time to the millisecond)
SEEK_AFTER = 60


def read_sound(clip: AudioClip) -> DecodedAudio:
    """Decode ``clip`` from its file: exactly ``round(duration * rate)`` samples from the sample at its start.

    Each decoded frame follows the one before it, unless its time stamp says otherwise by more than
    :func:`_tolerance` (a gap in the sound: silence there; an overlap: the later frame wins). A packet that does
    not decode (damaged, or cut by a seek) is silence; a change of sample rate or channels mid-stream is followed.
    Where the file's sound starts after the span or ends before it, the rest is silence.

    Raises:
        ValueError: no sound decoded in or before the span.
        Exception: whatever PyAV raises for a file it cannot open or read (the caller says so in one line).
    """
    seek = clip.start - clip.source.clock_zero - SEEK_MARGIN > SEEK_AFTER
    placed = _decode_into(clip, seek)
    if seek and (placed.first is None or placed.first > clip.start):  # a seek past the span's start: from the start
        placed = _decode_into(clip, seek=False)
    if placed.first is None:
        raise ValueError("no sound decoded")
    out = np.clip(placed.samples, -1.0, 1.0)  # a float source's overs (a mix-down's matrix is scaled: none there)
    span = None
    if placed.last is not None and placed.last > clip.start and placed.first < clip.start + clip.duration:
        span = (float(max(placed.first - clip.start, 0)), float(min(placed.last - clip.start, clip.duration)))
    return DecodedAudio(out, placed.rate, span)


def _tolerance(time_base: Fraction | None, frame: Fraction) -> Fraction:
    """How far a frame's time stamp may stray from where the frame before it ends and still be taken as following
    it: half the frame's length (a frame left out moves the stamps by a whole one; a recording clock's stamps
    wobble by a few ms around samples that follow each other), at least 2 ms or two ticks of a coarser clock."""
    return max(frame / 2, Fraction(1, 500), 2 * time_base if time_base else Fraction(0))


@dataclass
class _Placed:
    """Samples placed in a span: [C, S] float32, their rate, and the clock times of the first sample decoded and of
    the end of the last (None: none)."""

    samples: np.ndarray
    rate: int
    first: Fraction | None = None
    last: Fraction | None = None


def _decode_into(clip: AudioClip, seek: bool) -> _Placed:
    import av

    src = clip.source
    with av.open(str(src.path)) as container:
        stream = container.streams[src.stream]
        ctx = stream.codec_context
        in_rate = ctx.sample_rate or 48000
        rate = in_rate if in_rate in AAC_RATES else 48000
        layout = "mono" if (ctx.channels or 2) == 1 else "stereo"
        placed = _Placed(np.zeros((1 if layout == "mono" else 2, round(clip.duration * rate)), np.float32), rate)
        for other in container.streams:  # demuxing reads them otherwise (a 1 GB video read for its sound)
            if other.index != src.stream:
                other.discard = av.stream.Discard.all
        tb, end = stream.time_base, clip.start + clip.duration
        if seek and tb:
            container.seek(int((clip.start - SEEK_MARGIN) / tb), stream=stream, backward=True)
        resampler, setup = None, None

        def place(chunk: np.ndarray, at: Fraction | None) -> None:
            n = chunk.shape[1]
            if placed.last is None:
                at = at if at is not None else Fraction(0)
                placed.first = at
            elif at is None or abs(at - placed.last) <= _tolerance(tb, Fraction(n, rate)):
                at = placed.last  # the frame follows the one before it
            pos = round((at - clip.start) * rate)
            lo, hi = max(pos, 0), min(pos + n, placed.samples.shape[1])
            if hi > lo:
                placed.samples[:, lo:hi] = chunk[:, lo - pos:hi - pos]
            placed.last = at + Fraction(n, rate)

        def drain(frames) -> None:
            for o in frames:
                place(o.to_ndarray(), Fraction(o.pts) * o.time_base if o.pts is not None and o.time_base else None)

        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:  # a damaged packet, or one a seek cut: silence in its place
                continue
            for frame in frames:
                key = (frame.format.name, frame.layout.name, frame.sample_rate)
                if key != setup:  # the first frame, or the sound changed its rate or channels mid-stream
                    if resampler is not None:
                        drain(resampler.resample(None))
                    # the mixing matrix scaled so that a mix down from more channels does not pass full scale
                    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate,
                                                  options={"rematrix_maxval": "1.0"})
                    setup = key
                drain(resampler.resample(frame))
            if placed.last is not None and placed.last > end:
                break
        if resampler is not None:
            drain(resampler.resample(None))
    return placed


def sound_for_output(clip: AudioClip) -> DecodedAudio | None:
    """:func:`read_sound` of ``clip`` with one line saying what ``video.mp4`` gets; None, with a warning line, where
    it does not decode (the video is made all the same, with the pictures alone)."""
    from sparsevid.log import info, warn

    src = clip.source
    try:
        sound = read_sound(clip)
    except Exception as e:  # PyAV / FFmpeg errors
        warn(f"the sound of {src.path.name} could not be read ({type(e).__name__}: {str(e).strip()[:100]}); "
             "video.mp4 gets the pictures alone -> re-encode its sound (ffmpeg -i IN -c:v copy -c:a aac OUT.mp4) "
             "and run again, or --video.no-audio")
        return None
    a, b = clip.file_times
    held = sound.sound_span
    # a shortfall under one audio frame (AAC's 1024 samples) is the file's last frame, not missing sound
    silent = "" if held is not None and held[0] < 0.025 and held[1] > float(clip.duration) - 0.025 else \
        " (the file has no sound there: silence)" if held is None else \
        f" (the file's sound covers {a + held[0]:.3f}-{a + held[1]:.3f} s of it: silence elsewhere)"
    info(f"video.mp4 gets the sound of {src.path.name} from {a:.3f} s to {b:.3f} s{silent} "
         f"({src.description or 'audio'} -> AAC {sound.rate / 1000:g} kHz {sound.layout}; --video.no-audio leaves it "
         "out)")
    return sound
