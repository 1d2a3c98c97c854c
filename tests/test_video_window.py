"""``--start``/``--end``: only a window of a video input is decoded (seek to the start, stop after the
end); frame indices count from the window's first frame, times stay exact; bad windows give one
line naming the flag. The test videos carry their frame number as a 7-bit bar code."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from sparsevid.data.load import load_scene
from sparsevid.data.video import parse_time, parse_window, read_video
from sparsevid.errors import SparsevidError
from sparsevid.video.io import write_video

N = 120  # frames: 4 s at 30 fps


def coded(k: int) -> np.ndarray:
    """A 48x64 frame whose 8 stripes (8 px each) spell ``k`` in binary (bit 0 on the left)."""
    img = np.zeros((48, 64, 3), np.uint8)
    for b in range(8):
        if (k >> b) & 1:
            img[:, 8 * b:8 * b + 8] = 255
    return img


def decode_number(img: np.ndarray) -> int:
    return sum(1 << b for b in range(8) if img[:, 8 * b + 2:8 * b + 6].mean() > 128)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("window") / "clip.mp4"
    write_video([coded(k) for k in range(N)], path, fps=30)
    return path


#: x264 options for a key frame every 10 frames
GOP10 = {"g": "10", "keyint_min": "10", "sc_threshold": "0"}


def coded_video(path, n: int, rate: int, options: dict | None = None):
    """A video of ``n`` :func:`coded` frames at ``rate`` fps through x264, in the container ``path``'s suffix names
    (``options`` set its key frames: by default one every 250 frames)."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate, options=options or {})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for k in range(n):
            for pkt in s.encode(av.VideoFrame.from_ndarray(coded(k), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


@pytest.fixture(scope="module")
def video_gop10(tmp_path_factory):
    """The same clip with a key frame every 10 frames (so a seek can skip frames)."""
    return coded_video(tmp_path_factory.mktemp("window_gop") / "clip.mp4", N, 30, GOP10)


def test_bar_code_round_trips(video):
    scene = read_video(video)
    assert [decode_number(f.image) for f in scene.frames] == list(range(N))


@pytest.mark.parametrize("start,end", [("2.5", "3.5"), ("f75", "f104"), ("2.5", "f104"), ("f75", "3.5")])
def test_window_seconds_and_frame_numbers(video, start, end):
    a, b = parse_window(start, end)
    scene = load_scene(video, start=a, end=b)
    assert scene.fps == Fraction(30)
    assert scene.indices == list(range(30))  # indices count from the window's first frame
    assert [decode_number(f.image) for f in scene.frames] == list(range(75, 105))
    assert 29 / scene.fps == Fraction(29, 30) and scene.time(29) == pytest.approx(29 / 30)  # from the window start
    assert [f.name for f in scene.frames[:2]] == ["frame_0000.png", "frame_0001.png"]


def test_load_scene_takes_seconds_and_frame_numbers_as_the_flags_do(video):
    """README's `load_scene(path, start=..., end=...)` with plain values: 2.5 failed as "cannot decode video"."""
    for start, end in ((2.5, 3.5), ("f75", "f104"), (2.5, "f104")):
        scene = load_scene(video, start=start, end=end)
        assert [decode_number(f.image) for f in scene.frames] == list(range(75, 105))
    with pytest.raises(SparsevidError, match="--end 2 is not after --start 2.5"):
        load_scene(video, start=2.5, end=2)


def test_open_ended_windows_and_keyframes(video):
    scene = load_scene(video, start=parse_time("f100", "--start"))
    assert [decode_number(f.image) for f in scene.frames] == list(range(100, N))
    scene = load_scene(video, end=parse_time("0.5", "--end"), keyframes=[0, 7, 14])
    assert scene.indices == [0, 7, 14] and len(scene.gt_frames) == 12
    assert [decode_number(f.image) for f in scene.frames] == [0, 7, 14]
    # a start between frames: the first frame at or after it
    scene = load_scene(video, start=parse_time("1.01", "--start"), end=parse_time("f33", "--end"))
    assert [decode_number(f.image) for f in scene.frames] == [31, 32, 33]


def test_only_the_window_is_decoded(video_gop10, monkeypatch):
    import av

    real_open = av.open
    decoded = []

    class Spy:
        def __init__(self, c):
            self._c = c

        def __getattr__(self, name):
            return getattr(self._c, name)

        def __enter__(self):
            self._c.__enter__()
            return self

        def __exit__(self, *exc):
            return self._c.__exit__(*exc)

        def decode(self, *a, **k):
            for vf in self._c.decode(*a, **k):
                decoded.append(vf.pts)
                yield vf

    monkeypatch.setattr(av, "open", lambda *a, **k: Spy(real_open(*a, **k)))
    scene = read_video(video_gop10, start=parse_time("f75", "--start"), end=parse_time("f84", "--end"))
    assert [decode_number(f.image) for f in scene.frames] == list(range(75, 85))
    assert len(decoded) <= 10 + 10 + 4, decoded  # from the key frame at 70, stopping just after 84
    assert len(decoded) < N // 2


@pytest.mark.parametrize("start,end,flag,words", [
    ("3.5", "2.5", "--end", "not after --start"),
    ("f80", "f79", "--end", "not after --start"),
    ("f80", "2.0", "--end", "not after --start"),  # mixed units: checked at the video's fps
    ("5", None, "--start", "beyond the video"),
    ("f200", None, "--start", "beyond the video"),
    ("1", "9.5", "--end", "beyond the video"),
    ("x1", None, "--start", "seconds or f<frame>"),
    ("-1", None, "--start", ">= 0"),
])
def test_bad_windows_are_one_line_errors(video, start, end, flag, words):
    with pytest.raises(SparsevidError) as e:
        a, b = parse_window(start, end)
        load_scene(video, start=a, end=b)
    msg = str(e.value)
    assert flag in msg and words in msg and "\n" not in msg.strip(), msg


def test_window_on_a_non_video_input_is_refused(tmp_path):
    from sparsevid.data.images import write_image

    for k in range(3):
        write_image(tmp_path / f"frame_{k:04d}.png", coded(k))
    with pytest.raises(SparsevidError, match="--start trims a video input"):
        load_scene(tmp_path, start=parse_time("1", "--start"))


def test_cli_inspect_and_poses_take_the_window(video, tmp_path, capsys):
    from sparsevid.cli import main

    assert main(["inspect", str(video), "--start", "f75", "--end", "f104", "--keyframes", "0,29"]) == 0
    out = capsys.readouterr().out
    assert "2 input frames, 28 ground-truth frames" in out and "video window" in out
    assert main(["inspect", str(video), "--start", "3", "--end", "2"]) == 2
    assert "--end 2 is not after --start 3" in capsys.readouterr().err
    assert main(["poses", str(video), "-o", str(tmp_path / "p"), "--start", "9"]) == 2
    assert "--start 9 is beyond the video" in capsys.readouterr().err


def test_run_takes_the_window_too(tmp_path):
    """``run --start/--end`` decodes only the window: 2D route on a 12-frame window of a 30-frame video."""
    import json

    from sparsevid.cli import main
    from sparsevid.video.io import write_video

    rng = np.random.default_rng(0)
    base = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    frames = [np.roll(base, i, axis=1) for i in range(30)]
    video = tmp_path / "clip.mp4"
    write_video(frames, video, 30)
    out = tmp_path / "out"
    rc = main(["run", str(video), "-o", str(out), "--start", "f10", "--end", "f21", "--keyframes", "0,5,11",
               "--fuse-mode", "2d", "--device", "cpu", "--no-video"])
    assert rc == 0
    assert len(list((out / "frames").glob("*.png"))) == 12
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["start"] == "f10"
    # the video's own frame numbers are named: run.json, the report's header, the viewer's caption (its "source
    # frame 5" was the window's, frame 15 of the video, with nothing to say so)
    assert info["window"] == {"start": "f10", "end": "f21", "first_frame": 10, "last_frame": 21}
    page = (out / "report.html").read_text()
    assert "--start f10 --end f21: the video&#x27;s frames 10-21" in page or \
        "--start f10 --end f21: the video's frames 10-21" in page
    from sparsevid.viewer.scene import frame_caption, load_output

    assert "source frame 5 (frame 15 of the video)" in frame_caption(load_output(out), 5)
    assert main(["run", str(video), "-o", str(tmp_path / "bad"), "--start", "f20", "--end", "f10"]) == 2
    assert not (tmp_path / "bad").exists()


def test_eval_and_report_pair_a_windowed_run_with_its_window(video, tmp_path):
    """`sparsevid eval OUT --gt VIDEO` and the report's ground truth read the video in the run's own window
    (the run's frame 0 is the video's frame 30 here): eval reproduces the run's scores, and the ground-truth
    frames are the window's, where before eval paired them with the video's first 30 frames."""
    import json

    from sparsevid.cli import main
    from sparsevid.eval.ground_truth import run_ground_truth
    from sparsevid.pipeline import named_config, run_pipeline

    out = tmp_path / "out"
    cfg = named_config("flow_only", input=video, output=out, keyframes=[0, 9, 19, 29], device="cpu",
                       start="f30", end="f59")
    cfg.write_video, cfg.write_report = False, False
    own = run_pipeline(cfg).metrics["heldout"]
    gt = run_ground_truth(out, video)
    assert sorted(gt) == list(range(30)) and decode_number(gt[0]) == 30 and decode_number(gt[29]) == 59
    assert main(["eval", str(out), "--gt", str(video), "--metrics", str(tmp_path / "m.json")]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["heldout"]["count"] == 26 and m["heldout"]["psnr"] == pytest.approx(own["psnr"], abs=1e-6)
    assert run_ground_truth(out, None) is not None  # the report falls back to the run's own input
    assert main(["report", str(out), "--gt", str(video)]) == 0 and (out / "report.html").is_file()


def test_a_window_of_a_ts_with_one_key_frame_is_decoded_from_its_start(tmp_path):
    """A .ts whose only key frame is its first (x264's default GOP of 250 frames): the seek to --start lands past
    every key frame and decodes nothing; the window is then decoded from the file's start (it was refused as
    "--start 1.0 is beyond the video: it is 3.000 s long")."""
    path = coded_video(tmp_path / "clip.ts", 90, 30)
    scene = load_scene(path, start="1.0", keyframes=[0, 10, 20])
    assert [decode_number(f.image) for f in scene.frames] == [30, 40, 50]
    scene = load_scene(path, start="f31", end="f80", keyframes=[0, 49])
    assert [decode_number(f.image) for f in scene.frames] == [31, 80] and len(scene.gt_frames) == 48


def test_a_window_of_a_ts_starts_at_its_first_frame_wherever_the_key_frames_are(tmp_path):
    """A .ts seek lands on the key frame after the time asked: the window is then sought again further back, not
    decoded from the file's start, and starts at its own first frame (it lost its first frames before)."""
    path = coded_video(tmp_path / "clip.ts", 200, 10, GOP10)
    for start, want in (("15.3", 153), ("f157", 157), ("19.8", 198)):
        scene = load_scene(path, start=start, keyframes=[0, 1])
        assert [decode_number(f.image) for f in scene.frames] == [want, want + 1], start
    with pytest.raises(SparsevidError, match="--start 25 is beyond the video"):
        load_scene(path, start="25", keyframes=[0, 1])
