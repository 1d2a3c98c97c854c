"""Exports: 3DGS ``.ply`` / ``.splat`` through gsplat's exporter (round trips through our reader,
plyfile and the .splat layout) and nerfstudio's ``camera_path.json``."""
from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from plyfile import PlyData
from scipy.spatial.transform import Rotation

from sparsevid.data.camera import Camera
from sparsevid.gaussians.ply import export_gaussians, load_ply, load_splat, save_ply, splat_bytes
from sparsevid.path.camera_path import PathFrames
from sparsevid.video.cameras_json import camera_path_dict, opencv_to_opengl, write_camera_path_json

N, K = 257, 16  # SH degree 3


def _params(n: int = N, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"means": torch.randn(n, 3, generator=g) * 2, "quats": torch.randn(n, 4, generator=g),
            "scales": torch.randn(n, 3, generator=g) - 3, "opacities": torch.randn(n, generator=g),
            "sh0": torch.randn(n, 1, 3, generator=g) * 0.5, "shN": torch.randn(n, K - 1, 3, generator=g) * 0.1}


def test_ply_and_splat_round_trip(tmp_path):
    p = _params()
    paths = export_gaussians(p, tmp_path)
    assert [q.name for q in paths] == ["point_cloud.ply", "point_cloud.splat"]
    assert not list(tmp_path.glob(".tmp-*"))

    back = load_ply(paths[0])  # our reader, exactly
    for k, v in p.items():
        assert torch.equal(back[k], v), k

    ply = PlyData.read(str(paths[0]))  # an independent reader: the standard 3DGS layout
    v = ply["vertex"]
    names = [prop.name for prop in v.properties]
    assert names == (["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(3 * (K - 1))]
                     + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    assert v.count == N and all(prop.val_dtype in ("f4", "<f4", "float32") for prop in v.properties)
    assert np.array_equal(v["y"], p["means"][:, 1].numpy()) and np.array_equal(v["rot_0"], p["quats"][:, 0].numpy())
    assert np.array_equal(v["f_rest_0"], p["shN"][:, 0, 0].numpy())       # channel-major:
    assert np.array_equal(v[f"f_rest_{K - 1}"], p["shN"][:, 0, 1].numpy())  # all R, then G, then B
    assert np.array_equal(v["opacity"], p["opacities"].numpy()) and np.array_equal(v["scale_2"], p["scales"][:, 2].numpy())

    raw = paths[1].read_bytes()
    assert len(raw) == 32 * N
    s = load_splat(paths[1])
    from gsplat.exporter import sort_centers

    order = sort_centers(p["means"], torch.arange(N)).numpy()  # .splat is in gsplat's Morton order
    assert np.array_equal(s["means"], p["means"].numpy()[order])
    assert np.allclose(s["scales"], np.exp(p["scales"].numpy()[order]), rtol=1e-6)
    rgb = np.clip((p["sh0"][:, 0].numpy() * 0.28209479177387814 + 0.5) * 255, 0, 255)[order]
    alpha = (torch.sigmoid(p["opacities"]).numpy() * 255)[order]
    assert np.abs(s["rgba"][:, :3] - rgb).max() <= 1 and np.abs(s["rgba"][:, 3] - alpha).max() <= 1
    q = p["quats"].numpy()[order]
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    assert np.abs(s["quats"] - q).max() <= 1.5 / 128


def test_save_ply_is_gsplats_writer(tmp_path):
    from gsplat import export_splats

    p = _params(40)
    path = save_ply(tmp_path / "a.ply", p)
    ref = export_splats(p["means"], p["scales"], p["quats"], p["opacities"], p["sh0"], p["shN"], format="ply")
    assert path.read_bytes() == ref


def test_nonfinite_gaussians_are_dropped_alone(tmp_path):
    """gsplat drops rows with NaN/inf, but a NaN opacity would drop every row (its check reduces over
    the wrong axis): ours drops just the bad Gaussians first."""
    p = _params(20)
    p["opacities"][3] = float("nan")
    p["means"][7, 1] = float("inf")
    back = load_ply(export_gaussians(p, tmp_path, formats=("ply",))[0])
    keep = [i for i in range(20) if i not in (3, 7)]
    assert len(back["means"]) == 18 and torch.equal(back["means"], p["means"][keep])


def test_compressed_ply_and_parameters_on_any_device(tmp_path):
    p = {k: torch.nn.Parameter(v) for k, v in _params(600).items()}  # trainer.params hold Parameters
    (path,) = export_gaussians(p, tmp_path, name="splat", formats=("ply_compressed",))
    assert path.name == "splat.compressed.ply"
    ply = PlyData.read(str(path))
    visible = int((torch.sigmoid(p["opacities"].detach()) > 1 / 255).sum())  # gsplat drops the invisible
    assert [e.name for e in ply.elements] == ["chunk", "vertex", "sh"] and ply["vertex"].count == visible
    assert len(splat_bytes(p, "splat")) == 32 * 600
    with pytest.raises(Exception, match="unknown export format"):
        export_gaussians(p, tmp_path, formats=("obj",))


# ---- camera_path.json ---------------------------------------------------------------------------
def _path(n: int = 6, fps=Fraction(30000, 1001)) -> tuple[PathFrames, Camera]:
    cam = Camera("OPENCV", 64, 48, (50.0, 60.0, 31.0, 25.0, 0.01, 0.0, 0.0, 0.0))
    rng = np.random.default_rng(1)
    c2ws = np.tile(np.eye(4), (n, 1, 1))
    c2ws[:, :3, :3] = Rotation.from_rotvec(rng.normal(0, 0.3, (n, 3))).as_matrix()
    c2ws[:, :3, 3] = rng.normal(0, 1, (n, 3))
    Ks = np.tile(cam.K, (n, 1, 1))
    Ks[:, 1, 1] += np.arange(n)  # a focal that changes along the path
    times = [Fraction(k) / fps for k in range(n)]
    is_input = np.zeros(n, bool)
    is_input[[0, 3, n - 1]] = True
    return PathFrames(times, fps, c2ws, Ks, np.arange(n, dtype=float), is_input), cam


def test_camera_path_json_nerfstudio_format(tmp_path):
    path, cam = _path()
    f = write_camera_path_json(tmp_path / "camera_path.json", path, cam, 0.5)
    d = json.loads(f.read_text())
    assert d["camera_type"] == "perspective"
    assert (d["render_width"], d["render_height"]) == (32, 24)
    assert d["fps"] == pytest.approx(30000 / 1001) and d["seconds"] * d["fps"] == pytest.approx(len(path))
    assert len(d["camera_path"]) == len(path) and len(d["keyframes"]) == 3
    for k, fr in enumerate(d["camera_path"]):
        assert set(fr) == {"camera_to_world", "fov", "aspect"} and len(fr["camera_to_world"]) == 16
        m = np.array(fr["camera_to_world"]).reshape(4, 4)  # row-major, as nerfstudio's .view(4, 4)
        cv = path.c2ws[k]
        # OpenGL axes: x the same, y and z negated; position unchanged
        assert np.allclose(m[:3, 0], cv[:3, 0]) and np.allclose(m[:3, 1], -cv[:3, 1])
        assert np.allclose(m[:3, 2], -cv[:3, 2]) and np.allclose(m[:3, 3], cv[:3, 3])
        assert np.allclose(m, opencv_to_opengl(cv)) and np.allclose(m[3], [0, 0, 0, 1])
        fy = path.Ks[k][1, 1] * 0.5  # the camera's fy at the render size
        assert fr["fov"] == pytest.approx(math.degrees(2 * math.atan(24 / (2 * fy))))
        # nerfstudio's reading (three_js_perspective_camera_focal_length) gives fy back
        assert (24 / 2) / math.tan(math.radians(fr["fov"]) / 2) == pytest.approx(fy)
        assert fr["aspect"] == pytest.approx(32 / 24)
    assert d["keyframes"][1]["matrix"] == d["camera_path"][3]["camera_to_world"]


def test_camera_path_json_in_a_nerfstudio_models_frame(tmp_path):
    path, cam = _path()
    R = Rotation.from_euler("xyz", [10, -20, 30], degrees=True).as_matrix()
    t = np.array([0.5, -1.0, 2.0])
    dp = {"transform": np.c_[R, t].tolist(), "scale": 0.25}
    (tmp_path / "dataparser_transforms.json").write_text(json.dumps(dp))
    d = camera_path_dict(path, cam, 1.0, tmp_path / "dataparser_transforms.json")
    for k, fr in enumerate(d["camera_path"]):
        m = np.array(fr["camera_to_world"]).reshape(4, 4)
        gl = opencv_to_opengl(path.c2ws[k])
        assert np.allclose(m[:3, :3], R @ gl[:3, :3])
        assert np.allclose(m[:3, 3], 0.25 * (R @ gl[:3, 3] + t))
