"""A video input's sound, placed against its frames (the data stage's part; :mod:`sparsevid.video.audio` encodes it
into ``video.mp4``).

The video and its sound share the container's clock: a frame's time stamp and an audio sample's time stamp are
seconds on one clock. :class:`AudioSource` holds the clock time of the scene's frame 0 (``read_video`` sets it,
with ``--start`` and the frame-rate grid applied); the output frame ``k`` is at ``k / fps`` from it, so the output's
``N`` frames span ``[start, start + N / fps)`` of the source's sound (:meth:`AudioSource.span`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path


@dataclass(frozen=True)
class AudioSource:
    """A video file's sound, placed against a scene's frames.

    Attributes:
        path: the video file.
        stream: the index (in the container) of its first audio stream.
        start: the container's clock time (seconds) of the scene's frame 0.
        fps: the scene's frame rate (frame ``i`` is at ``start + i / fps``).
        description: what the stream is, e.g. ``"aac 48 kHz stereo"`` (for the lines the run prints).
    """

    path: Path
    stream: int
    start: Fraction
    fps: Fraction
    description: str = ""

    def shifted(self, offset: int) -> "AudioSource":
        """The same sound for a scene whose frame indices all moved by ``offset`` (:meth:`Scene.shifted`)."""
        return replace(self, start=self.start - Fraction(offset) / self.fps)

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


def describe_stream(stream) -> str:
    """``"aac 48 kHz stereo"`` for a PyAV audio stream."""
    ctx = stream.codec_context
    rate = f"{ctx.sample_rate / 1000:g} kHz" if ctx.sample_rate else "unknown rate"
    layout = getattr(getattr(ctx, "layout", None), "name", None) or f"{ctx.channels} channels"
    return f"{ctx.name} {rate} {layout}"
