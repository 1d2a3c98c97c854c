"""Video output (PyAV MP4, frames, contact sheet, cameras.json) and rendering in the input lens."""
from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsevid.data.camera import Camera
from sparsevid.data.synthetic import render, trajectory
from sparsevid.errors import SparsevidError
from sparsevid.eval.metrics import psnr
from sparsevid.path import CameraPath, PathConfig
from sparsevid.poses.undistort import Undistorter
from sparsevid.render import render_frames, render_path
from sparsevid.video import (contact_sheet, read_frames, read_image, read_video, write_cameras_json, write_contact_sheet,
                             write_frames, write_video)
from sparsevid.video.io import VideoConfig, check_video_config, rgb_to_yuv420p

CHROMIUM = Path("/usr/bin/chromium")
TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _clip(n: int = 8, w: int = 96, h: int = 64) -> list[np.ndarray]:
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    return [np.stack([(u * 2 + 5 * t) % 256, (v * 3) % 256, np.full_like(u, 40 + 20 * t)], -1).astype(np.uint8)
            for t in range(n)]


def test_mp4_round_trip_exact_ntsc_rate(tmp_path):
    frames = _clip()
    out = write_video(frames, tmp_path / "v.mp4", fps=29.97)
    back, fps = read_video(out)
    assert fps == Fraction(30000, 1001)
    assert len(back) == len(frames) and back[0].shape == frames[0].shape
    assert min(psnr(a, b) for a, b in zip(back, frames)) > 30
    import av

    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        assert s.codec_context.profile == "High"  # what browsers and phones play
        pts = [f.pts * f.time_base for f in c.decode(s)]
    assert pts == [Fraction(k * 1001, 30000) for k in range(len(frames))]
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]  # no temp files left
    data = out.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # faststart: plays while it downloads


def test_rgb_to_yuv420p_gives_bt601_limited_range_and_block_mean_chroma():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2, :2] = (255, 0, 0)  # one block red, one white, one black
    img[:2, 2:] = 255
    img[2:, 2:, 0] = 255  # the last block: two red pixels beside two black ones
    img[2:, 3, 0] = 0
    out = rgb_to_yuv420p(img)
    assert out.shape == (6, 4) and out.dtype == np.uint8
    y, u, v = out[:4], out[4:5].reshape(2, 2), out[5:6].reshape(2, 2)
    assert (y[0, 0], u[0, 0], v[0, 0]) == (81, 90, 240)  # BT.601 red
    assert (y[0, 2], u[0, 1], v[0, 1]) == (235, 128, 128) and (y[2, 0], u[1, 0], v[1, 0]) == (16, 128, 128)
    assert (u[1, 1], v[1, 1]) == (109, 184)  # the mean of red's and black's chroma (90 and 128, 240 and 128)
    with pytest.raises(ValueError):
        rgb_to_yuv420p(img[:3])


def test_mp4_keeps_colour_detail_better_than_ffmpegs_own_conversion(tmp_path):
    """Through the same x264 settings, the frames converted by rgb_to_yuv420p come back closer to the originals
    than those converted by ffmpeg's swscale (PyAV's reformat, what write_video used before session 26; written by
    tools/video_crf_probe.py's ``write_video_swscale``, the probe that measured it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("video_crf_probe", TOOLS / "video_crf_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    demo = Path(__file__).resolve().parents[1] / "sparsevid" / "data" / "demo"
    frames = [read_image(f)[100:196, 300:428] for f in sorted(demo.glob("frame_*.png"))]  # the real demo clip
    ours = write_video(frames, tmp_path / "ours.mp4", fps=30)
    probe.write_video_swscale(frames, tmp_path / "swscale.mp4", VideoConfig.crf)
    fidelity = lambda p: np.mean([psnr(a, b) for a, b in zip(read_video(p)[0], frames)])
    assert fidelity(ours) > fidelity(tmp_path / "swscale.mp4") + 0.1


def test_mp4_odd_size_is_padded(tmp_path, capsys):
    frames = [f[:63, :95] for f in _clip(3)]
    back, _ = read_video(write_video(frames, tmp_path / "odd.mp4", fps=30))
    assert back[0].shape == (64, 96, 3)
    assert psnr(back[0][:63, :95], frames[0]) > 30
    assert "odd.mp4: the 95x63 frames are padded to 96x64" in capsys.readouterr().err
    # a video made for a page (the report's) says nothing of a file the user never sees
    write_video(frames, tmp_path / "clip.mp4", fps=30, announce_padding=False)
    assert "padded" not in capsys.readouterr().err


def test_mp4_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "v.mp4"
    target.write_bytes(b"old")
    import av

    calls = {"n": 0}
    real = av.VideoFrame.from_ndarray

    def failing(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(*a, **kw)

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", failing)
    with pytest.raises(SparsevidError, match="disk full"):
        write_video(_clip(), target, fps=30)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]
    with pytest.raises(SparsevidError):
        write_video([np.zeros((4, 4), np.uint8)], tmp_path / "bad.mp4", 30)


#: colour bars as a camera sees them (none at the edge of the RGB cube, where YUV clips)
BARS = np.array([[200, 40, 40], [40, 180, 60], [50, 70, 210], [230, 200, 60]], np.uint8)


def _in_chromium(mp4: Path, tmp_path: Path, style: str) -> np.ndarray:
    """A screenshot (400x400 RGB) of headless Chromium showing ``mp4``'s first frame at the page's top left."""
    import base64

    from sparsevid.video.io import read_image

    page = tmp_path / "video.html"
    page.write_text("<html><body style='margin:0;background:#000'><video muted autoplay preload=auto "
                    f"style='display:block;{style}' src='data:video/mp4;base64,"
                    + base64.b64encode(mp4.read_bytes()).decode() + "'></video></body></html>")
    shot = tmp_path / "shot.png"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=400,400",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    shutil.rmtree(tmp_path / "chromium", ignore_errors=True)
    return read_image(shot)


def _bars(w: int, h: int) -> np.ndarray:
    return np.repeat(np.repeat(BARS[None], h, 0), w // len(BARS), 1)


def test_mp4_says_its_colour_matrix_so_hd_frames_keep_their_colours(tmp_path):
    """The stream is tagged BT.601 (the matrix of the RGB -> YUV conversion), limited range. Untagged, players
    guess from the frame size: Chromium showed this 1280x720 clip's green (40, 180, 60) as (29, 160, 61)."""
    import av

    path = write_video([_bars(1280, 720)] * 3, tmp_path / "hd.mp4", fps=30)
    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        assert (int(cc.colorspace), int(cc.color_range)) == (6, 1)  # SMPTE 170M (BT.601), MPEG (limited) range
        assert (int(cc.color_primaries), int(cc.color_trc)) == (1, 1)  # BT.709
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    centres = frame[360, 160::320].astype(int)
    assert np.abs(centres - BARS).max() <= 3
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (apt-get install chromium) for the browser half")
    seen = _in_chromium(path, tmp_path, "width:400px;height:100px;object-fit:fill")[50, 50::100].astype(int)
    assert np.abs(seen - BARS).max() <= 4, seen


@pytest.mark.parametrize("degrees, turns", [(-90, -1), (90, 1), (180, 2), (0, 0)])
def test_a_phone_clip_filmed_upright_is_read_upright(tmp_path, degrees, turns, write_clip):
    """The stream says "turn me by ``degrees`` counter-clockwise" (an iPhone held upright: -90); a white block marks
    the stored picture's top-left corner."""
    from sparsevid.data.video import read_video as read_input

    stored = np.full((64, 96, 3), 60, np.uint8)
    stored[:16, :24] = 255
    write_clip([stored] * 3, tmp_path / "v.mp4", rotation=degrees)
    want = np.rot90(stored, k=turns)  # k > 0: counter-clockwise
    scene = read_input(tmp_path / "v.mp4")
    back, _ = read_video(tmp_path / "v.mp4")
    for img in (scene.frames[0].image, back[0]):
        assert img.shape == want.shape
        assert np.abs(img.astype(int) - want).mean() < 3
    if degrees != -90 or not CHROMIUM.exists():
        return
    seen = _in_chromium(tmp_path / "v.mp4", tmp_path, "")[:96, :64].astype(int)  # a browser shows it the same way
    assert np.abs(seen - scene.frames[0].image).mean() < 6


def test_video_settings_reach_x264_and_bad_ones_are_refused(tmp_path):
    frames = _clip(6, 128, 96)
    small = write_video(frames, tmp_path / "c28.mp4", fps=30, crf=28, preset="fast")
    fine = write_video(frames, tmp_path / "c8.mp4", fps=30, crf=8)
    for path, crf, subme in ((small, 28, 6), (fine, 8, 7)):  # x264 records its settings in the stream:
        data = path.read_bytes()  # the crf, and the preset's subpixel refinement (fast 6, medium 7)
        assert f" crf={crf}.0 ".encode() in data and f" subme={subme} ".encode() in data
    assert fine.stat().st_size > small.stat().st_size
    fidelity = lambda p: np.mean([psnr(a, b) for a, b in zip(read_video(p)[0], frames)])
    assert fidelity(fine) > fidelity(small) + 1.5
    check_video_config(VideoConfig())
    for bad, words in ((VideoConfig(crf=0), "1 to 51"), (VideoConfig(crf=52), "1 to 51"),
                       (VideoConfig(preset="fastest"), "--video.preset")):
        with pytest.raises(SparsevidError, match=words):
            check_video_config(bad)
    from sparsevid.cli import main

    assert main(["run", "--video.crf", "0", "-o", str(tmp_path / "out"), "--device", "cpu"]) == 2
    assert not (tmp_path / "out").exists()


def test_write_frames_and_read_back(tmp_path):
    frames = _clip(5)
    write_frames(frames + frames[:2], tmp_path / "frames")
    paths = write_frames(frames, tmp_path / "frames")
    assert [p.name for p in paths] == [f"frame_{i:04d}.png" for i in range(5)]
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [p.name for p in paths]  # stale removed
    back = read_frames(tmp_path / "frames")
    assert list(back) == list(range(5)) and all(np.array_equal(back[i], frames[i]) for i in range(5))
    # written in chunks: each chunk keeps the frames before its start (they were deleted)
    write_frames(frames[:3], tmp_path / "chunks")
    write_frames(frames[3:], tmp_path / "chunks", start=3)
    back = read_frames(tmp_path / "chunks")
    assert list(back) == list(range(5)) and all(np.array_equal(back[i], frames[i]) for i in range(5))


def test_contact_sheet(tmp_path):
    frames = _clip(7)
    sheet = contact_sheet(frames, [f"f{i}" for i in range(7)], cols=3, tile_width=48, gap=2)
    assert sheet.dtype == np.uint8 and sheet.shape[1] == 3 * 48 + 4 * 2
    assert sheet.shape[0] > 3 * 32  # 3 rows of 32 px tiles plus label bars
    p = write_contact_sheet(tmp_path / "sheet.png", frames, cols=4, tile_width=None)
    img = read_frames(tmp_path)[0]
    assert p.exists() and img.shape == (2 * 64 + 3 * 4, 4 * 96 + 5 * 4, 3)  # 2 rows x 4 cols, 4 px gaps
    np.testing.assert_array_equal(img[4:68, 4:100], frames[0])
    with pytest.raises(SparsevidError):
        contact_sheet(frames, ["a"], cols=2)


def test_cameras_json_nerfstudio_convention(tmp_path):
    cam = Camera("OPENCV", 848, 480, (501.6, 501.6, 424.0, 240.0, -0.1403, 0.0, 0.0, 0.0))
    true = trajectory(30)
    keys = [0, 9, 19, 29]
    frames = CameraPath.from_indices(keys, 29.97, true[keys], cam.K).frames(PathConfig(), scene_fps=29.97)
    write_cameras_json(tmp_path / "cameras.json", frames, cam, scale=0.5)
    d = json.loads((tmp_path / "cameras.json").read_text())
    assert d["camera_model"] == "OPENCV" and d["w"] == 424 and d["h"] == 240 and d["k1"] == -0.1403
    assert d["fps"] == "30000/1001" and d["num_frames"] == 30 and len(d["frames"]) == 30
    f9 = d["frames"][9]
    assert f9["is_input"] and f9["file_path"] == "frames/frame_0009.png"
    assert f9["time"] == pytest.approx(9 * 1001 / 30000) and f9["time_exact"] == "3003/10000"
    assert f9["fl_x"] == pytest.approx(250.8) and f9["cx"] == pytest.approx(212.0)
    gl = np.array(f9["transform_matrix"])
    np.testing.assert_allclose(gl[:3, 0], true[9, :3, 0])
    np.testing.assert_allclose(gl[:3, 1:3], -true[9, :3, 1:3])
    np.testing.assert_allclose(gl[:3, 3], true[9, :3, 3])


def _ray_cast_render_fn(c2ws: torch.Tensor, Ks: torch.Tensor, width: int, height: int) -> dict:
    """A stand-in for the trainer: exact pinhole renders of the synthetic corridor."""
    rgb, depth = [], []
    for c2w, K in zip(c2ws.double().numpy(), Ks.double().numpy()):
        cam = Camera.pinhole(K[0, 0], K[1, 1], K[0, 2], K[1, 2], width, height)
        im, d = render(cam, c2w)
        rgb.append(torch.from_numpy(im.astype(np.float32) / 255))
        depth.append(torch.from_numpy(d.astype(np.float32))[..., None])
    rgb, depth = torch.stack(rgb), torch.stack(depth)
    return {"rgb": rgb, "depth": depth, "alpha": torch.ones_like(depth)}


def test_render_frames_line_up_with_the_distorted_source():
    cam = Camera("OPENCV", 128, 96, (100.0, 100.0, 64.0, 48.0, -0.14, 0.02, 0.0, 0.0))
    und = Undistorter.for_camera(cam)
    c2ws = trajectory(3)
    res = render_path(_ray_cast_render_fn, c2ws, und, batch=2, keep_canvas=True)
    assert len(res.frames) == 3 and res.frames[0].shape == (96, 128, 3) and res.frames[0].dtype == np.uint8
    wc, hc = und.canvas_size
    assert res.canvas_rgb.shape == (3, hc, wc, 3) and res.canvas_depth.shape == (3, hc, wc, 1)
    assert res.canvas_alpha.shape == (3, hc, wc, 1)
    for t in range(3):
        direct, _ = render(cam, c2ws[t])  # ray-cast straight through the lens
        assert psnr(res.frames[t], direct) > 26  # measured ~28
        # a frame that ignores the lens (pinhole render at the input K) is clearly worse
        naive, _ = render(cam.to_pinhole(), c2ws[t])
        assert psnr(res.frames[t], direct) > psnr(naive, direct) + 8  # naive ~17.7
    # scale: a Camera plus scale builds the undistorter
    half = render_frames(_ray_cast_render_fn, c2ws[:1], cam, scale=0.5)
    assert half[0].shape == (48, 64, 3)


def test_path_renderer_and_the_3d_route_a_chunk_at_a_time():
    """The run renders the path a chunk at a time (PathRenderer) as the enhancement takes it: the same canvases as
    render_path, and the same 3D route frames as from canvases rendered all at once, with the fixer and without."""
    from sparsevid.fixer import RefViews, get_fixer
    from sparsevid.fixer.enhance import EnhanceConfig
    from sparsevid.fuse.route3d import path_frames_3d
    from sparsevid.path.camera_path import PathFrames
    from sparsevid.render.frames import PathRenderer

    cam = Camera("OPENCV", 96, 64, (80.0, 80.0, 48.0, 32.0, -0.1, 0.01, 0.0, 0.0))
    und = Undistorter.for_camera(cam)
    c2ws = trajectory(11)
    whole = render_path(_ray_cast_render_fn, c2ws, und, keep_canvas=True, distort=False)
    renderer = PathRenderer(_ray_cast_render_fn, c2ws, und, batch=3)
    for sl in (slice(0, 11), slice(2, 7), slice(9, 11)):
        for a, b in zip(renderer.canvas(sl), whole.canvas(sl)):
            assert np.array_equal(a, b)
    calls = []

    def counted(*a):
        calls.append(len(a[0]))
        return _ray_cast_render_fn(*a)

    path = PathFrames([Fraction(i, 30) for i in range(11)], Fraction(30), c2ws, np.repeat(cam.K[None], 11, 0),
                      np.arange(11, dtype=np.float64))
    ins = [0, 5, 10]
    refs = RefViews(torch.from_numpy(whole.canvas_rgb[ins]), torch.from_numpy(np.repeat(und.pinhole.K[None], 3, 0)).float(),
                    torch.from_numpy(c2ws[ins]), torch.from_numpy(whole.canvas_depth[ins]))
    cfg = EnhanceConfig(chunk=4)
    for fixer in (None, get_fixer("reproject")):
        calls.clear()
        got = path_frames_3d(PathRenderer(counted, c2ws, und), path, und, refs, fixer, cfg)
        want = path_frames_3d(whole, path, und, refs, fixer, cfg)
        assert len(got) == 11 and sum(calls) == 11  # each frame rendered once
        for (i0, w0), (i1, w1) in zip(got, want):
            assert i0.shape == (64, 96, 3) and np.array_equal(i0, i1) and np.array_equal(w0, w1)


def test_scene_to_video_end_to_end(tmp_path):
    """Posed synthetic scene -> path -> render in the lens -> MP4 + frames + cameras.json -> evaluate."""
    from sparsevid.data.synthetic import make_scene
    from sparsevid.eval import evaluate

    scene = make_scene(width=96, height=64, model="OPENCV", with_points=False)
    path = CameraPath.from_scene(scene)
    frames_cfg = path.frames(PathConfig(), scene_fps=scene.fps)
    assert len(frames_cfg) == 30 and list(np.nonzero(frames_cfg.is_input)[0]) == [0, 9, 19, 29]
    out = render_frames(_ray_cast_render_fn, frames_cfg.c2ws, scene.camera, batch=8)
    gt = {f.index: f.image for f in scene.frames + scene.gt_frames}
    r = evaluate(out, gt, scene.indices)
    assert r["inputs"]["psnr"] > 25  # the inputs are reproduced through the lens
    assert r["heldout"]["psnr"] > 20  # the path follows the true walk closely (measured 22.8)
    write_frames(out, tmp_path / "frames")
    write_video(out, tmp_path / "video.mp4", frames_cfg.fps)
    write_cameras_json(tmp_path / "cameras.json", frames_cfg, scene.camera)
    back, fps = read_video(tmp_path / "video.mp4")
    assert len(back) == 30 and fps == 30
    d = json.loads((tmp_path / "cameras.json").read_text())
    assert [i for i, f in enumerate(d["frames"]) if f["is_input"]] == [0, 9, 19, 29]


def test_mp4_is_the_same_file_for_the_same_frames(tmp_path):
    """The same frames give the same file, every time (x264 read unset padding bytes of a 424-sample chroma row
    in a 432-byte line: two encodings of a run's frames differed by up to 20 levels); the coded picture is
    cropped back to the frames' size. Smaller frames too, with other allocations between the encodings as in a
    run: x264's AVX-512 path coded 424x240 and 160x90 frames into up to 4 files over 8 encodings (session 39)."""
    import hashlib

    from sparsevid.data.load import demo_path

    keys = [read_image(p) for p in sorted(demo_path().glob("frame_*.png"))]
    frames = [np.clip((1 - a) * keys[i].astype(np.float32) + a * keys[i + 1], 0, 255).astype(np.uint8)
              for i in range(3) for a in np.linspace(0, 1, 6, endpoint=False)]
    digests = {hashlib.sha256(write_video(frames, tmp_path / f"v{k}.mp4", 30).read_bytes()).hexdigest()
               for k in range(5)}
    assert len(digests) == 1
    back, _ = read_video(tmp_path / "v0.mp4")
    assert back[0].shape == frames[0].shape and psnr(back[5], frames[5]) > 35
    import cv2

    held, pan = [], [keys[0][:, 3 * k:3 * k + 700] for k in range(30)]  # a camera panning: x264's mbtree at work
    for w, h in ((424, 240), (160, 90)):
        small = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in pan]
        digests = set()
        for k in range(10):
            held.append(np.random.default_rng(k).integers(0, 255, 1 << 20, np.uint8))  # the heap as a run leaves it
            digests.add(hashlib.sha256(write_video(small, tmp_path / f"s{w}_{k}.mp4", 30).read_bytes()).hexdigest())
        assert len(digests) == 1, (w, h, len(digests))


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium")
def test_mp4_of_a_width_not_a_multiple_of_64_plays_at_its_size_in_chromium(tmp_path):
    import json
    import re
    import subprocess

    frames = [f[:60, :90] for f in _clip(10)]
    write_video(frames, tmp_path / "v.mp4", fps=30)
    page = tmp_path / "p.html"
    page.write_text('<video id="v" src="v.mp4" muted preload="auto"></video><script>'
                    "document.getElementById('v').addEventListener('loadeddata',function(){var v=this;"
                    "var p=document.createElement('pre');p.id='probe';"
                    "p.textContent=JSON.stringify([v.videoWidth,v.videoHeight]);document.body.appendChild(p);});"
                    "</script>")
    dom = subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--mute-audio",
                          "--allow-file-access-from-files", "--virtual-time-budget=5000",
                          f"--user-data-dir={tmp_path / 'u'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom)
    assert m and json.loads(m.group(1)) == [90, 60], dom[-1000:]
