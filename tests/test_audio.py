"""A video input's sound carried over to video.mp4: in step with the frames, for the span they cover."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from sparsevid.data.audio import read_sound
from sparsevid.data.load import load_scene
from sparsevid.video.io import write_video


def make_clip_with_sound(path: Path, n: int = 60, rate: int = 30, sample_rate: int = 48000, layout: str = "stereo",
                         burst: tuple[float, float] = (1.0, 1.2), codec: str = "aac", audio_delay: float = 0.0,
                         drop: tuple[float, float] | None = None, junk: tuple[float, float] | None = None,
                         level: float = 0.5, jitter: float = 0.0) -> Path:
    """``n`` frames of 64x48 at ``rate`` fps, with a sound that is silent but for a 440 Hz tone of amplitude
    ``level`` over ``burst`` (seconds of the file; the audio stream starting ``audio_delay`` seconds after the
    video). ``drop``: the audio frames starting in this interval are left out (the others keep their time stamps: a
    gap). ``junk``: the audio packets starting in this interval carry garbage (they do not decode). ``jitter``: each
    audio packet's time stamp moved by up to this many seconds either way (a recording clock's stamps), the samples
    following each other all the same."""
    rng = np.random.default_rng(0)
    import av

    with av.open(str(path), "w") as c:
        video = c.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = c.add_stream(codec, rate=sample_rate, layout=layout)
        size = audio.codec_context.frame_size or 1024
        channels = audio.codec_context.channels
        t = audio_delay + np.arange(int((n / rate - audio_delay) * sample_rate)) / sample_rate
        tone = np.where((t >= burst[0]) & (t < burst[1]), level * np.sin(2 * np.pi * 440 * t), 0.0)
        planar = np.tile(tone.astype(np.float32), (channels, 1))
        fmt = audio.codec_context.format.name
        sent, first = 0, round(audio_delay * sample_rate)
        for i in range(n):
            img = np.full((48, 64, 3), (10 + 4 * i) % 250, np.uint8)
            for p in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
            while sent + size <= min(planar.shape[1], (i + 1) * sample_rate // rate):
                part = planar[:, sent:sent + size]
                if fmt == "s16":
                    part = (part.T.reshape(1, -1) * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format=fmt, layout=layout)
                frame.sample_rate, frame.pts = sample_rate, first + sent
                at = (first + sent) / sample_rate
                sent += size
                if drop is not None and drop[0] <= at < drop[1]:
                    continue
                for p in audio.encode(frame):
                    if jitter and p.pts is not None:
                        move = round(rng.uniform(-jitter, jitter) / p.time_base)
                        p.pts, p.dts = p.pts + move, (p.dts + move if p.dts is not None else None)
                    if junk is not None and p.pts is not None and junk[0] <= float(p.pts * p.time_base) < junk[1]:
                        bad = av.Packet(bytes(range(256)) * (max(p.size, 256) // 256))
                        bad.pts, bad.dts, bad.time_base, bad.stream = p.pts, p.dts, p.time_base, p.stream
                        p = bad
                    c.mux(p)
        for p in video.encode():
            c.mux(p)
        for p in audio.encode(None):
            c.mux(p)
    return path


def sound_of(path: Path) -> tuple[np.ndarray, int, int]:
    """(the first channel's samples, the sample rate, the channel count) of ``path``'s first audio stream."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        parts = []
        for f in c.decode(stream):
            x = f.to_ndarray()
            parts.append(x[0] if f.format.is_planar else x.reshape(-1, len(f.layout.channels))[:, 0])
        return np.concatenate(parts).astype(np.float32), stream.codec_context.sample_rate, stream.codec_context.channels


def tone_span(samples: np.ndarray, rate: int) -> tuple[float, float]:
    loud = np.nonzero(np.abs(samples) > 0.05)[0]
    assert len(loud), "no tone in the sound"
    return loud[0] / rate, (loud[-1] + 1) / rate


@pytest.mark.parametrize("start,first_time,tone_at", [(None, Fraction(1, 2), 0.5), ("f15", Fraction(1, 3), 1 / 6),
                                                      ("0.9", Fraction(0), 0.1)])
def test_the_sound_under_the_output_frames_is_carried_in_step(tmp_path, start, first_time, tone_at):
    """The tone at 1.0-1.2 s of the file lands where the output's frames show that time: a window (--start) and an
    output that starts later both move it; to the sample (48 kHz), and the same file every time."""
    clip = make_clip_with_sound(tmp_path / "clip.mp4")
    scene = load_scene(clip, keyframes=[0, 10, 20], start=start)
    assert scene.audio is not None and scene.audio.description == "aac 48 kHz stereo"
    frames = [np.full((48, 64, 3), 8 * k, np.uint8) for k in range(30)]
    sound = read_sound(scene.audio.span(first_time, Fraction(1)))
    digests = {hashlib.sha256(write_video(frames, tmp_path / f"v{k}.mp4", 30, audio=sound).read_bytes()).hexdigest()
               for k in range(2)}
    assert len(digests) == 1
    samples, rate, channels = sound_of(tmp_path / "v0.mp4")
    assert rate == 48000 and channels == 2
    assert abs(len(samples) / rate - 1.0) < 1024 / rate + 1e-9  # the frames' second, to one AAC frame
    a, b = tone_span(samples, rate)
    assert abs(a - tone_at) < 2e-3 and abs(b - (tone_at + 0.2)) < 2e-3, (a, b)


@pytest.mark.parametrize("sample_rate,layout,codec,suffix,want", [(44100, "mono", "aac", ".mp4", (44100, 1)),
                                                                  (37800, "5.1", "pcm_s16le", ".mkv", (48000, 2))])
def test_sound_of_other_rates_and_layouts(tmp_path, sample_rate, layout, codec, suffix, want):
    """Mono stays mono at its rate; a rate AAC does not code is resampled to 48 kHz and 5.1 is mixed down to stereo;
    a sound that starts after the pictures is silent until it starts."""
    clip = make_clip_with_sound(tmp_path / f"clip{suffix}", sample_rate=sample_rate, layout=layout, codec=codec,
                                audio_delay=0.25)
    scene = load_scene(clip, keyframes=[0, 10, 20])
    out = write_video([np.zeros((48, 64, 3), np.uint8)] * 45, tmp_path / "v.mp4", 30,
                      audio=read_sound(scene.audio.span(Fraction(0), Fraction(3, 2))))
    samples, rate, channels = sound_of(out)
    assert (rate, channels) == want
    assert np.abs(samples[:int(0.2 * rate)]).max() < 0.01  # silence before the sound starts
    a, b = tone_span(samples, rate)
    assert abs(a - 1.0) < 3e-3 and abs(b - 1.2) < 3e-3, (a, b)


def test_sound_that_does_not_decode_costs_a_warning_not_the_video(tmp_path, monkeypatch, capsys):
    """A sound that fails to decode: one warning line, and the video with the pictures alone. A stream PyAV has no
    decoder for (its codec renamed in the file) leaves the video readable, with no sound."""
    import av

    import sparsevid.data.audio as audio
    from sparsevid.pipeline import named_config, run_pipeline

    clip = make_clip_with_sound(tmp_path / "clip.mp4")

    def broken(_):
        raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")

    monkeypatch.setattr(audio, "read_sound", broken)
    cfg = named_config("default", input=clip, output=tmp_path / "out", keyframes=[0, 10, 20], write_report=False)
    cfg.fuse.mode = "2d"
    run_pipeline(cfg)
    with av.open(str(tmp_path / "out" / "video.mp4")) as c:
        assert len(c.streams.video) == 1 and not c.streams.audio
    err = capsys.readouterr().err
    assert "the sound of clip.mp4 could not be read" in err and "--video.no-audio" in err
    assert json.loads((tmp_path / "out" / "run.json").read_text())["sound"] is None

    mkv = make_clip_with_sound(tmp_path / "clip.mkv", codec="pcm_s16le")
    data = mkv.read_bytes()
    assert b"A_PCM/INT/LIT" in data
    mkv.write_bytes(data.replace(b"A_PCM/INT/LIT", b"A_PCM/INT/XXX"))  # a codec this FFmpeg cannot decode
    scene = load_scene(mkv, keyframes=[0, 10, 20])
    assert scene.audio is None and scene.indices == [0, 10, 20] and len(scene.gt_frames) == 57


def test_a_video_that_starts_late_on_its_clock_and_a_shifted_scene_keep_the_sound_in_step(tmp_path):
    """A file whose pictures start 0.5 s into its clock (a cut, a .ts capture): the sound under frame k is still the
    sound at frame k's time stamp. ``Scene.shifted`` moves the sound with the frames' numbers."""
    import av

    src = make_clip_with_sound(tmp_path / "clip.mp4")
    late = tmp_path / "late.mkv"  # every packet's time stamp moved 0.5 s later, pictures and sound alike
    with av.open(str(src)) as i, av.open(str(late), "w") as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for packet in i.demux():
            if packet.dts is None:
                continue
            shift = round(Fraction(1, 2) / packet.stream.time_base)
            packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
            packet.stream = streams[packet.stream.index]
            o.mux(packet)
    scene = load_scene(late, keyframes=[0, 10, 20])
    a, b = tone_span(read_sound(scene.audio.span(Fraction(1, 2), Fraction(1))).samples[0], 48000)
    assert abs(a - 0.5) < 2e-3 and abs(b - 0.7) < 2e-3, (a, b)  # the tone at 1.0 s of the pictures' time
    moved = scene.shifted(-10)  # frame 10 is now frame 0
    a, _ = tone_span(read_sound(moved.audio.span(Fraction(0), Fraction(1))).samples[0], 48000)
    assert abs(a - (1.0 - 10 / 30)) < 2e-3, a
    assert moved.audio.span(Fraction(0), Fraction(1)).file_times[0] == pytest.approx(1 / 3, abs=1e-3)


def test_fps_given_for_a_video_leaves_its_sound_out(tmp_path, capsys):
    """--fps re-times the frames, not their sound: the two would drift apart, so the sound is left out, said once
    by the run (the loader, which inspect and poses use too, says nothing of video.mp4)."""
    from sparsevid.pipeline import named_config, output_sound

    clip = make_clip_with_sound(tmp_path / "clip.mp4")
    same = load_scene(clip, keyframes=[0, 10, 20], fps=30)
    other = load_scene(clip, keyframes=[0, 10, 20], fps=24)
    assert "sound" not in capsys.readouterr().err
    assert same.audio.matches(same.fps) and not other.audio.matches(other.fps)
    sound, record = output_sound(named_config("default", keyframes=[0, 10, 20]), other)
    assert sound is None and record is None
    assert "is left out of video.mp4: --fps 24 re-times its frames (30.000 fps in the file)" in capsys.readouterr().err


def test_run_writes_the_sound_and_no_audio_leaves_it_out(tmp_path):
    """End to end through the command line: video.mp4 holds the sound of the output frames' 1.5 s, run.json and
    the report say so (its player is not muted); --video.no-audio leaves it out."""
    from sparsevid.pipeline import named_config, run_pipeline

    clip = make_clip_with_sound(tmp_path / "clip.mp4")
    out = tmp_path / "with"
    r = subprocess.run([sys.executable, "-m", "sparsevid", "run", str(clip), "--keyframes", "15,24,34,44", "-o",
                        str(out), "--fuse.mode", "2d"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "video.mp4 gets the sound of clip.mp4 from 0.000 s to 1.500 s (aac 48 kHz stereo -> AAC 48 kHz stereo" \
        in r.stderr
    samples, rate, _ = sound_of(out / "video.mp4")
    assert abs(len(samples) / rate - 1.5) < 1024 / rate + 1e-9
    a, b = tone_span(samples, rate)
    assert abs(a - 1.0) < 2e-3 and abs(b - 1.2) < 2e-3
    page = (out / "report.html").read_text()
    assert "video.mp4 with the sound of clip.mp4 from 0.000 s to 1.500 s" in page
    assert '<video id="output-video" class="main" controls loop playsinline' in page  # not muted: it has sound
    record = json.loads((out / "run.json").read_text())["sound"]
    assert record["from_s"] == 0 and record["to_s"] == 1.5 and record["codec"] == "aac 48000 Hz stereo"
    # video.mp4 deleted from the finished run: --resume writes it again from the frames, with its sound, byte for byte
    video = (out / "video.mp4").read_bytes()
    (out / "video.mp4").unlink()
    r = subprocess.run([sys.executable, "-m", "sparsevid", "run", str(clip), "--keyframes", "15,24,34,44", "-o",
                        str(out), "--fuse.mode", "2d", "--resume"], capture_output=True, text=True)
    assert r.returncode == 0 and "wrote its missing video.mp4 and report.html from its frames" in r.stderr, r.stderr
    assert (out / "video.mp4").read_bytes() == video
    assert json.loads((out / "run.json").read_text())["sound"] == record
    import av

    cfg = named_config("default", input=clip, output=tmp_path / "without", keyframes=[15, 24, 34, 44],
                       write_report=False)
    cfg.fuse.mode, cfg.video.audio = "2d", False
    run_pipeline(cfg)
    with av.open(str(tmp_path / "without" / "video.mp4")) as c:
        assert not c.streams.audio
    assert json.loads((tmp_path / "without" / "run.json").read_text())["sound"] is None


def test_inspect_names_the_sound(tmp_path):
    from sparsevid.cli.inspect import summary_lines

    lines = summary_lines(load_scene(make_clip_with_sound(tmp_path / "clip.mp4", sample_rate=44100, layout="mono")))
    assert "sound: aac 44.1 kHz mono (audio stream 1 of the file; run puts the part under the output frames into " \
        "video.mp4)" in lines
    from tests.test_data import make_video

    assert not any(x.startswith("sound:") for x in summary_lines(load_scene(make_video(tmp_path / "mute.mp4"))))


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium")
def test_the_video_with_its_sound_plays_in_chromium(tmp_path):
    """A browser plays the file to its end, pictures and sound (Chromium's decoded-audio byte count), in real time
    (an audio track paces playback by the sound card's clock, which headless Chromium's virtual time does not move)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    scene = load_scene(make_clip_with_sound(tmp_path / "clip.mp4"), keyframes=[0, 10, 20])
    write_video([np.full((48, 64, 3), 8 * k, np.uint8) for k in range(30)], tmp_path / "v.mp4", 30,
                audio=read_sound(scene.audio.span(Fraction(1, 2), Fraction(1))))
    page_file = tmp_path / "p.html"
    page_file.write_text('<video id="v" src="v.mp4" muted playsinline></video>')
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required",
                                           "--allow-file-access-from-files", "--mute-audio"])
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri(), wait_until="load")
            page.evaluate("document.getElementById('v').play()")
            page.wait_for_function("document.getElementById('v').ended", timeout=20_000)
            width, duration, audio_bytes, video_bytes = page.evaluate(
                "(() => {const v = document.getElementById('v'); return [v.videoWidth, v.duration, "
                "v.webkitAudioDecodedByteCount, v.webkitVideoDecodedByteCount];})()")
        finally:
            browser.close()
    assert width == 64 and abs(duration - 1.0) < 0.01 and audio_bytes > 1000 and video_bytes > 0


def test_a_gap_in_the_sound_stays_silent_and_the_sound_after_it_in_step(tmp_path):
    """Audio frames missing at 0.8-1.0 s (the later ones keep their time stamps; PCM in Matroska, which keeps such a
    gap where MP4's PCM and the AAC and FLAC encoders close it): silence there, and the tone at 1.0-1.2 s where it
    belongs (it came 192 ms early when the frames were laid end to end). Matroska's millisecond time stamps do not
    move frames that follow each other."""
    clip = make_clip_with_sound(tmp_path / "clip.mkv", codec="pcm_s16le", drop=(0.8, 1.0))
    scene = load_scene(clip, keyframes=[0, 10, 20], start="0.3")
    sound = read_sound(scene.audio.span(Fraction(0), Fraction(3, 2)))
    a, b = tone_span(sound.samples[0], sound.rate)
    first_kept = 47 * 1024 / 48000  # the first frame not dropped (1024 samples a frame) starts at 1.0027 s
    assert abs(a - (first_kept - 0.3)) < 1e-3 and abs(b - 0.9) < 1e-3, (a, b)
    assert np.abs(sound.samples[0, int(0.51 * 48000):int(0.69 * 48000)]).max() == 0  # the gap: silence
    assert sound.sound_span == (0.0, 1.5)


def test_packets_that_do_not_decode_are_silence_not_the_loss_of_the_sound(tmp_path):
    clip = make_clip_with_sound(tmp_path / "clip.mp4", junk=(0.3, 0.5), burst=(0.2, 1.2))
    scene = load_scene(clip, keyframes=[0, 10, 20])
    sound = read_sound(scene.audio.span(Fraction(0), Fraction(2)))
    x = np.abs(sound.samples[0])
    assert x[int(0.6 * 48000):int(1.1 * 48000)].max() > 0.4  # the tone after the damaged packets is there
    a, b = tone_span(sound.samples[0], sound.rate)
    assert abs(a - 0.2) < 2e-3 and abs(b - 1.2) < 2e-3, (a, b)


def test_a_mix_down_from_six_channels_is_not_clipped(tmp_path):
    """5.1 with the tone at 0.6 in every channel: the stereo mix keeps the tone's shape (the mixing matrix is
    scaled; summed as it was, the mix reached 1.485 and was clipped)."""
    clip = make_clip_with_sound(tmp_path / "clip.mp4", layout="5.1", level=0.6)
    sound = read_sound(load_scene(clip, keyframes=[0, 10, 20]).audio.span(Fraction(0), Fraction(2)))
    x = sound.samples[0, int(1.02 * 48000):int(1.18 * 48000)]
    assert np.abs(sound.samples).max() < 0.999
    t = np.arange(int(1.02 * 48000), int(1.18 * 48000)) / 48000
    assert np.corrcoef(x, np.sin(2 * np.pi * 440 * t))[0, 1] > 0.995


def test_time_stamps_that_wobble_do_not_cut_the_sound(tmp_path):
    """A sound stamped by a recording clock (each packet's stamp up to 3 ms off, its samples following each other):
    the frames are laid end to end, no silent gap or overwritten tail (a 2 ms tolerance left ~350 clicks in 20 s)."""
    clip = make_clip_with_sound(tmp_path / "clip.mkv", n=90, burst=(0.0, 3.0), jitter=0.003)
    sound = read_sound(load_scene(clip, keyframes=[0, 10, 20]).audio.span(Fraction(0), Fraction(3)))
    x = sound.samples[0, 2400:-4800].astype(np.float64)
    jumps = np.abs(x[2:] - 2 * x[1:-1] + x[:-2])  # a 440 Hz tone of 0.5 bends by at most 0.002 a sample
    assert jumps.max() < 0.05, (int((jumps > 0.05).sum()), float(jumps.max()))
