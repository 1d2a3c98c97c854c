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
        samples: [C, S] float32 in [-1, 1], C 1 (mono) or 2 (stereo; more channels are mixed down to two, scaled so
            that the mix does not clip).
        rate: samples per second (one AAC codes).
    """

    samples: np.ndarray
    rate: int

    @property
    def layout(self) -> str:
        return "mono" if self.samples.shape[0] == 1 else "stereo"


def read_sound(clip: AudioClip) -> DecodedAudio:
    """Decode ``clip`` from its file: exactly ``round(duration * rate)`` samples from the sample at its start (silence
    where the file's sound starts later or ends earlier).

    Raises:
        Exception: whatever PyAV raises for a file or stream it cannot decode (the caller says so in one line).
    """
    first_time, held, rate = _decode_from(clip, seek=True)
    if first_time > clip.start:  # the seek landed after the span's start (a file with few seek points): from 0
        first_time, held, rate = _decode_from(clip, seek=False)
    count = round(clip.duration * rate)
    begin = round((clip.start - first_time) * rate)  # where the clip starts in what was decoded
    out = np.zeros((held.shape[0], count), np.float32)
    lo, hi = max(begin, 0), min(begin + count, held.shape[1])
    if hi > lo:
        out[:, lo - begin:hi - begin] = held[:, lo:hi]
    peak = float(np.abs(out).max()) if out.size else 0.0
    if peak > 1.0:  # a mix down from more channels summed past full scale: scaled, not clipped
        out /= peak
    return DecodedAudio(out, rate)


def _decode_from(clip: AudioClip, seek: bool) -> tuple[Fraction, np.ndarray, int]:
    """(the clock time of the first sample decoded, [C, S] float32 samples up to the clip's end, their rate)."""
    import av

    src = clip.source
    with av.open(str(src.path)) as container:
        stream = container.streams[src.stream]
        in_rate = stream.codec_context.sample_rate or 48000
        rate = in_rate if in_rate in AAC_RATES else 48000
        layout = "mono" if (stream.codec_context.channels or 2) == 1 else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        tb = stream.time_base
        seek_to = clip.start - SEEK_MARGIN
        if seek and seek_to > 0 and tb:
            container.seek(int(seek_to / tb), stream=stream, backward=True)
        end = clip.start + clip.duration
        first_time, chunks = None, []
        for frame in container.decode(stream):
            if first_time is None:
                first_time = Fraction(frame.pts) * tb if frame.pts is not None and tb else Fraction(0)
            chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
            if frame.pts is not None and tb and Fraction(frame.pts) * tb > end:
                break
        chunks.extend(out.to_ndarray() for out in resampler.resample(None))
    channels = 1 if layout == "mono" else 2
    held = np.concatenate(chunks, axis=1).astype(np.float32) if chunks else np.zeros((channels, 0), np.float32)
    return (first_time if first_time is not None else clip.start), held, rate


def sound_for_output(clip: AudioClip, fix_flag: str = "--video.no-audio") -> DecodedAudio | None:
    """:func:`read_sound` of ``clip`` with one line saying what ``video.mp4`` gets; None, with a warning line, where
    it does not decode (the video is made all the same, with the pictures alone)."""
    from sparsevid.log import info, warn

    src = clip.source
    try:
        sound = read_sound(clip)
    except Exception as e:  # PyAV / FFmpeg errors
        warn(f"the sound of {src.path.name} could not be read ({type(e).__name__}: {str(e).strip()[:100]}); "
             "video.mp4 gets the pictures alone -> re-encode its sound (ffmpeg -i IN -c:v copy -c:a aac OUT.mp4) "
             f"and run again, or {fix_flag}")
        return None
    a, b = clip.file_times
    info(f"video.mp4 gets the sound of {src.path.name} from {a:.3f} s to {b:.3f} s ({src.description or 'audio'} "
         f"-> AAC {sound.rate / 1000:g} kHz {sound.layout}; {fix_flag} leaves it out)")
    return sound
