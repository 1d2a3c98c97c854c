"""The source video's sound in ``video.mp4``: the samples under the output frames (read by
:func:`sparsevid.data.audio.read_sound`) encoded as AAC (FFmpeg's own encoder), which every player, browser and
editor plays, beside the pictures.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from sparsevid.data.audio import DecodedAudio

#: the AAC bit rate per channel (128 kb/s for stereo: transparent for most listeners)
BITRATE_PER_CHANNEL = 64_000


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
