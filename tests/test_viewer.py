"""``sparsevid view``: the pure parts (loading an output folder, splat arrays, frustum poses, the live
CPU render, the markdown) on a tiny folder built here, and the viser server answering HTTP 200."""
from __future__ import annotations

import json
import socket
import sys
import urllib.request
from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from sparsevid.data.camera import Camera
from sparsevid.errors import SparsevidError
from sparsevid.gaussians.ply import save_ply
from sparsevid.path.camera_path import PathFrames
from sparsevid.video.cameras_json import write_cameras_json
from sparsevid.video.io import write_frames
from sparsevid.viewer import scene as vs

T = 6


def _path(n: int = T) -> tuple[PathFrames, Camera]:
    cam = Camera("PINHOLE", 64, 48, (50.0, 52.0, 32.0, 24.0))
    rng = np.random.default_rng(1)
    c2ws = np.tile(np.eye(4), (n, 1, 1))
    c2ws[:, :3, :3] = Rotation.from_rotvec(rng.normal(0, 0.1, (n, 3))).as_matrix()
    c2ws[:, :3, 3] = np.stack([np.linspace(0, 1, n), np.zeros(n), np.zeros(n)], 1)
    fps = Fraction(30)
    is_input = np.zeros(n, bool)
    is_input[[0, n - 1]] = True
    return PathFrames([Fraction(k) / fps for k in range(n)], fps, c2ws, np.tile(cam.K, (n, 1, 1)),
                      np.arange(n, dtype=float), is_input), cam


def _gaussians(n: int = 50, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * 0.3 + torch.tensor([0.5, 0.0, 4.0])
    return {"means": means, "quats": torch.randn(n, 4, generator=g), "scales": torch.randn(n, 3, generator=g) - 2,
            "opacities": torch.randn(n, generator=g) + 2, "sh0": torch.randn(n, 1, 3, generator=g) * 0.5,
            "shN": torch.randn(n, 3, 3, generator=g) * 0.05}


def _frames(n: int = T) -> list[np.ndarray]:
    return [np.full((48, 64, 3), 20 * k, np.uint8) for k in range(n)]


@pytest.fixture
def out3d(tmp_path):
    out = tmp_path / "run"
    path, cam = _path()
    write_cameras_json(out / "cameras.json", path, cam)
    save_ply(out / "train" / "point_cloud.ply", _gaussians())
    write_frames(_frames(), out / "frames")
    (out / "poses").mkdir()
    (out / "poses" / "poses_report.json").write_text(json.dumps(
        {"registered": 2, "points": 123, "mean_reproj_error_px": 0.5, "focal": {"final": 50.0, "source": "exif"},
         "attempt": "features/global", "camera": {"model": "PINHOLE", "width": 64, "height": 48}}))
    (out / "quality.json").write_text(json.dumps({"route": "fused 2D + 3D", "psnr_heldout": 24.5,
                                                  "ssim_heldout": 0.81, "loo_psnr": 22.0, "gain_3d": 0.1}))
    return out, path


def test_load_output_3d(out3d):
    out, path = out3d
    s = vs.load_output(out)
    assert s.notes == [] and s.has_3d and s.num_frames == T
    assert len(s.cameras) == T and s.ply_path == out / "train" / "point_cloud.ply"
    for k, c in enumerate(s.cameras):  # the OpenGL transform_matrix comes back as the OpenCV c2w
        np.testing.assert_allclose(c.c2w, path.c2ws[k], atol=1e-9)
        np.testing.assert_allclose(c.K, path.Ks[k], atol=1e-9)
        assert c.is_input == bool(path.is_input[k]) and c.time == pytest.approx(k / 30)
        R = Rotation.from_quat(np.r_[c.wxyz[1:], c.wxyz[0]]).as_matrix()  # frustum pose = camera pose
        np.testing.assert_allclose(R, path.c2ws[k][:3, :3], atol=1e-9)
        np.testing.assert_allclose(c.position, path.c2ws[k][:3, 3])
    assert s.cameras[0].fov_y == pytest.approx(2 * np.arctan(48 / (2 * 52.0)))
    assert s.cameras[0].aspect == pytest.approx(64 / 48)
    assert s.frame(2).shape == (48, 64, 3) and int(s.frame(2)[0, 0, 0]) == 40
    assert "123" in vs.pose_markdown(s) and "2 of 2" in vs.pose_markdown(s) and "exif" in vs.pose_markdown(s)
    assert "24.50 dB" in vs.quality_markdown(s)
    assert "input frame" in vs.frame_caption(s, 0) and "input" not in vs.frame_caption(s, 2)
    up = vs.up_direction(s.cameras)
    assert up @ -path.c2ws[0][:3, 1] > 0.9
    scale = vs.frustum_scale(s.cameras, vs.splat_arrays(s.gaussians)["centers"])
    assert 0 < scale <= 0.8 * 0.2 + 1e-9  # about one step between the cameras (0.2 apart)


def test_splat_arrays():
    q = Rotation.from_euler("z", 30, degrees=True).as_quat()  # x, y, z, w
    p = {"means": torch.tensor([[1.0, 2.0, 3.0], [np.nan, 0, 0]]),
         "quats": torch.tensor([[q[3], q[0], q[1], q[2]], [1, 0, 0, 0]], dtype=torch.float32) * 2,  # unnormalised
         "scales": torch.log(torch.tensor([[0.1, 0.2, 0.3], [1, 1, 1]])),
         "opacities": torch.tensor([0.0, 0.0]), "sh0": torch.tensor([[[1.0, 0.0, -5.0]], [[0, 0, 0]]]),
         "shN": torch.zeros(2, 3, 3)}
    a = vs.splat_arrays(p)
    assert {k: v.shape for k, v in a.items()} == {"centers": (1, 3), "covariances": (1, 3, 3), "rgbs": (1, 3),
                                                  "opacities": (1, 1)}  # the NaN Gaussian is left out
    R = Rotation.from_euler("z", 30, degrees=True).as_matrix()
    np.testing.assert_allclose(a["covariances"][0], R @ np.diag([0.01, 0.04, 0.09]) @ R.T, atol=1e-6)
    np.testing.assert_allclose(a["rgbs"][0], [0.5 + vs.SH_C0, 0.5, 0.0], atol=1e-6)  # clipped at 0
    assert a["opacities"][0, 0] == pytest.approx(0.5) and a["centers"].dtype == np.float32


def test_render_view_sees_the_gaussian():
    cam = vs.PathCamera(index=0, time=0.0, c2w=np.eye(4), K=np.array([[100.0, 0, 64], [0, 100.0, 48], [0, 0, 1]]),
                        width=128, height=96)
    red = {"means": torch.tensor([[0.0, 0.0, 3.0]]), "quats": torch.tensor([[1.0, 0, 0, 0]]),
           "scales": torch.log(torch.tensor([[0.3, 0.3, 0.3]])), "opacities": torch.tensor([8.0]),
           "sh0": torch.tensor([[[0.5 / vs.SH_C0, -0.5 / vs.SH_C0, -0.5 / vs.SH_C0]]]), "shN": torch.zeros(1, 0, 3)}
    img = vs.render_view(red, cam, long_side=64)
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    r, g, b = (int(v) for v in img[24, 32])
    assert r > 240 and g < 5 and b < 5  # the centre: the red Gaussian (alpha 0.999 at most)
    assert tuple(img[0, 0]) == (0, 0, 0)  # a corner: the background
    moved = vs.PathCamera(index=0, time=0.0, c2w=np.eye(4), K=cam.K, width=128, height=96)
    moved.c2w[0, 3] = 5.0  # the Gaussian is out of view
    assert vs.render_view(red, moved, long_side=64).max() == 0
    assert vs.render_size(1920, 1080, 320) == (320, 180) and vs.render_size(100, 50, 320) == (100, 50)


def test_2d_only_and_not_an_output_folder(tmp_path):
    out = tmp_path / "run2d"
    write_frames(_frames(4), out / "frames")
    (out / "run.json").write_text(json.dumps({"fps": "30", "num_frames": 4,
                                              "poses": {"failed": "no frames could be registered"}}))
    s = vs.load_output(out)
    assert not s.has_3d and s.cameras == [] and s.gaussians is None and s.num_frames == 4
    assert any("2D-only" in n and "no frames could be registered" in n for n in s.notes)
    assert "failed" in vs.pose_markdown(s) and "None (yet)" in vs.quality_markdown(s)
    assert s.frame(3) is not None and "t = 0.100 s" in vs.frame_caption(s, 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SparsevidError, match="not a sparsevid output folder"):
        vs.load_output(tmp_path / "empty")
    with pytest.raises(SparsevidError, match="not found"):
        vs.load_output(tmp_path / "missing")


def test_interrupted_and_2d_runs_and_a_damaged_ply_are_described_as_they_are(tmp_path, out3d):
    """An interrupted run was called "2D-only"; a --fuse-mode 2d run's poses "came from the input"; a truncated
    point_cloud.ply was a traceback (and then "no point_cloud.ply (yet)")."""
    intr = tmp_path / "intr"
    intr.mkdir()
    (intr / "run.json").write_text(json.dumps({"status": "interrupted", "stage": "training", "config": {}}))
    s = vs.load_output(intr)
    assert any("interrupted in training" in n and "--resume" in n for n in s.notes), s.notes
    assert not any("2D-only" in n for n in s.notes) and "No pose report (yet)" in vs.pose_markdown(s)
    flow = tmp_path / "flow"
    write_frames(_frames(4), flow / "frames")
    (flow / "run.json").write_text(json.dumps({"status": "done", "fps": "30", "num_frames": 4,
                                               "config": {"fuse": {"mode": "2d"}}}))
    s = vs.load_output(flow)
    assert any("2D-only" in n and "--fuse-mode 2d" in n for n in s.notes), s.notes
    assert "No poses were needed" in vs.pose_markdown(s)
    ply = out3d[0] / "train" / "point_cloud.ply"
    ply.write_bytes(ply.read_bytes()[:-100])
    s = vs.load_output(out3d[0])
    assert s.gaussians is None and [n for n in s.notes if "point_cloud" in n] == [
        next(n for n in s.notes if "is unreadable (the file is cut short" in n)], s.notes


def test_a_host_or_port_the_viewer_cannot_listen_on_is_a_one_line_error():
    """viser waited for ever on an address that is not this machine's, and an unknown host name."""
    from sparsevid.viewer.server import free_port

    for host, words in (("no.such.host.invalid", "unknown address"), ("192.0.2.1", "cannot listen there")):
        with pytest.raises(SparsevidError, match=f"--host {host}: {words}"):
            free_port(host, 8080)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert free_port("127.0.0.1", port) > port
        with pytest.raises(SparsevidError, match=f"no free port from {port} to {port}"):
            free_port("127.0.0.1", port, tries=1)


def test_view_without_viser_says_how_to_install(out3d, monkeypatch, capsys):
    from sparsevid.cli import main

    monkeypatch.setitem(sys.modules, "viser", None)  # import viser -> ImportError
    assert main(["view", str(out3d[0]), "--port", "8123"]) == 2
    err = capsys.readouterr().err
    assert "viser" in err and "pip install" in err and len(err.strip().splitlines()) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["3d", "2d"])
def test_server_answers(out3d, tmp_path, kind):
    pytest.importorskip("viser")
    from sparsevid.viewer.server import start

    out = out3d[0]
    if kind == "2d":
        out = tmp_path / "run2d"
        write_frames(_frames(3), out / "frames")
    viewer = start(out, port=_free_port(), render_long_side=32)
    try:
        with urllib.request.urlopen(viewer.url, timeout=20) as r:
            assert r.status == 200 and b"<html" in r.read(2000).lower()
        assert len(viewer.frustums) == (T if kind == "3d" else 0)
        viewer.slider.value = 2  # the slider's callback: frame, caption, current frustum, live render
        viewer.show_frame(2)
        assert "frame 2" in viewer.caption.content
        shown = np.asarray(viewer.frame_image.image).copy()
        (out / "frames" / "frame_0001.png").write_bytes(b"not a png")  # damaged later: said, not a traceback
        viewer.show_frame(1)
        assert "frame 1 is unreadable" in viewer.caption.content
        assert not np.array_equal(np.asarray(viewer.frame_image.image), shown)  # not frame 2's image under it
        viewer.reload()
    finally:
        viewer.stop()
