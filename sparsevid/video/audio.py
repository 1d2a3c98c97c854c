"""The source video's sound, carried over to ``video.mp4``: the part of it that the output frames span, decoded with
PyAV and encoded as AAC (FFmpeg's own encoder), which every player, browser and editor plays.

Where the sound lies against the frames is :class:`sparsevid.data.audio.AudioSource`'s part (the input's).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from sparsevid.data.audio import AudioClip

#: the sample rates AAC codes (MPEG-4 audio's sampling frequency table); any other is resampled to 48 kHz
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
#: the AAC bit rate per channel (128 kb/s for stereo: transparent for most listeners)
BITRATE_PER_CHANNEL = 64_000
#: decoding starts this far before the span (seconds): a seek lands on a packet at or before the time asked
SEEK_MARGIN = Fraction(1, 2)


@dataclass
class DecodedAudio:
    """Planar float samples ready for the AAC encoder.

    Attributes:
        samples: [C, S] float32 in [-1, 1], C 1 (mono) or 2 (stereo; more channels are mixed down to two).
        rate: samples per second (one AAC codes).
    """

    samples: np.ndarray
    rate: int

    @property
    def layout(self) -> str:
        return "mono" if self.samples.shape[0] == 1 else "stereo"


def decode_clip(clip: AudioClip) -> DecodedAudio:
    """Decode ``clip`` from its file: exactly ``round(duration * rate)`` samples from the sample at its start (silence
    where the file's sound starts later or ends earlier).

    Raises:
        Exception: whatever PyAV raises for a file or stream it cannot decode (the caller says so in one line).
    """
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
        if seek_to > 0 and tb:
            container.seek(int(seek_to / tb), stream=stream, backward=True)
        end = clip.start + clip.duration
        first_time, chunks = None, []
        for frame in container.decode(stream):
            if first_time is None:
                first_time = Fraction(frame.pts) * tb if frame.pts is not None and tb else Fraction(0)
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
            if frame.pts is not None and tb and Fraction(frame.pts) * tb > end:
                break
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    channels = 1 if layout == "mono" else 2
    held = np.concatenate(chunks, axis=1).astype(np.float32) if chunks else np.zeros((channels, 0), np.float32)
    first_time = first_time if first_time is not None else clip.start
    count = round(clip.duration * rate)
    begin = round((clip.start - first_time) * rate)  # where the clip starts in what was decoded
    out = np.zeros((channels, count), np.float32)
    lo, hi = max(begin, 0), min(begin + count, held.shape[1])
    if hi > lo:
        out[:, lo - begin:hi - begin] = held[:, lo:hi]
    return DecodedAudio(np.clip(out, -1.0, 1.0), rate)


class AudioTrack:
    """An AAC stream in an output container, fed up to a time as the video's frames are written, so that the file
    holds sound and pictures side by side (:func:`sparsevid.video.io.write_video`)."""

    def __init__(self, container, audio: DecodedAudio):
        import av

        self.audio, self.container = audio, container
        self.stream = container.add_stream("aac", rate=audio.rate, layout=audio.layout)
        self.stream.bit_rate = BITRATE_PER_CHANNEL * audio.samples.shape[0]
        self.stream.time_base = Fraction(1, audio.rate)
        self._av = av
        self.sent = 0  # samples given to the encoder

    def feed_until(self, seconds: Fraction | None) -> None:
        """Encode and mux the samples before ``seconds`` (None: all of them, then flush the encoder)."""
        total = self.audio.samples.shape[1]
        upto = total if seconds is None else min(total, int(Fraction(seconds) * self.audio.rate))
        size = self.stream.codec_context.frame_size or 1024
        while self.sent < upto and (seconds is None or upto - self.sent >= size):
            part = self.audio.samples[:, self.sent:self.sent + size]
            frame = self._av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format="fltp",
                                                     layout=self.audio.layout)
            frame.sample_rate, frame.pts, frame.time_base = self.audio.rate, self.sent, Fraction(1, self.audio.rate)
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.sent += part.shape[1]
        if seconds is None:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
