"""The 3D route's leave-one-out rebuild of an input (sparsevid.fuse.route3d.LeaveOneOut3D): which camera it renders."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from sparsevid.data.camera import Camera
from sparsevid.data.scene import Frame, Scene
from sparsevid.data.synthetic import case_trajectory
from sparsevid.fuse.route3d import LeaveOneOut3D
from sparsevid.path.camera_path import CameraPath
from sparsevid.poses.undistort import Undistorter

KEYS = (0, 9, 19, 29)
W, H = 40, 30


def _scene() -> Scene:
    poses = case_trajectory("walking_shake")  # bounce and hand shake between the inputs
    cam = Camera.pinhole(24.0, 24.0, W / 2, H / 2, W, H)
    frames = [Frame(index=k, image=np.zeros((H, W, 3), np.uint8), name=f"frame_{k:04d}.png", c2w=poses[k])
              for k in KEYS]
    return Scene(frames=frames, camera=cam, fps=30.0)


def _recording_render(seen: list[np.ndarray]):
    def render(c2w: torch.Tensor, K: torch.Tensor, w: int, h: int) -> dict[str, torch.Tensor]:
        seen.append(c2w[0].double().numpy().copy())
        grey = torch.full((1, h, w, 3), 0.5)
        return {"rgb": grey, "depth": torch.ones(1, h, w, 1), "alpha": torch.ones(1, h, w, 1)}
    return render


def test_leave_one_out_renders_the_input_camera_or_where_the_path_through_the_others_puts_it() -> None:
    scene = _scene()
    und = Undistorter.for_camera(scene.camera)
    own, at_path = [], []
    LeaveOneOut3D(scene, und, _recording_render(own), None, None).held_out([9, 19])
    rebuilt = LeaveOneOut3D(scene, und, _recording_render(at_path), None, None, at_path=True).held_out([9, 19])
    poses = case_trajectory("walking_shake")
    # by default: each held-out input's own camera
    np.testing.assert_allclose(own[0], poses[9], atol=1e-6)
    np.testing.assert_allclose(own[1], poses[19], atol=1e-6)
    # at_path: the path through the three other inputs at the held-out time, as an in-between frame gets
    for c2w, k in zip(at_path, (9, 19)):
        refs = [q for q in KEYS if q != k]
        path = CameraPath.from_indices(refs, 30, np.stack([poses[q] for q in refs]))
        np.testing.assert_allclose(c2w, path.at([Fraction(k, 30)])[0][0], atol=1e-6)
        # which is not the camera itself: the walk's bounce and shake between the knots
        assert np.linalg.norm(c2w[:3, 3] - poses[k][:3, 3]) > 5e-3 or \
            np.degrees(np.arccos(np.clip((np.trace(c2w[:3, :3].T @ poses[k][:3, :3]) - 1) / 2, -1, 1))) > 0.1
    # the rebuild itself: the plain render in the input lens, weighted by its opacity
    img, weight = rebuilt[9]
    assert img.shape == (H, W, 3) and weight.shape == (H, W)
    np.testing.assert_allclose(img[H // 2, W // 2], 0.5, atol=1e-6)


def test_path_error_of_the_3d_route_shrinks_towards_the_inputs_and_its_model_error_does_not() -> None:
    from sparsevid.fuse.loo import ERROR_GROWTH, LooResult

    shape = (6, 8)
    held, d0 = [9, 19], 9.5
    e2d, e3_path, e3_own = 40.0, 30.0, 10.0  # the 3D route errs 10 at its own camera, 30 at the path's

    def result(own: bool) -> LooResult:
        sq = {k: {"2d": np.full(shape, e2d, np.float32), "3d": np.full(shape, e3_path, np.float32)} for k in held}
        return LooResult(held, {k: d0 for k in held}, sq, {k: {} for k in held}, 1.0,
                         sq_errors_3d_own={k: np.full(shape, e3_own, np.float32) for k in held} if own else {})

    for d in (1.0, 3.0, d0):
        s = (d / d0) ** ERROR_GROWTH
        hybrid = result(True).gains_at(12.0, 0.0, distance=d)
        path_only = result(False).gains_at(12.0, 0.0, distance=d)
        want3 = e3_own + (e3_path - e3_own) * s  # the model's error, plus the path's extra error scaled
        np.testing.assert_allclose(hybrid["3d"], (1 / want3) / (1 / want3 + 1 / (e2d * s)), rtol=1e-5)
        np.testing.assert_allclose(path_only["3d"], (1 / e3_path) / (1 / e3_path + 1 / (e2d * s)), rtol=1e-5)
        if d < d0:  # nearer an input the path errs less, so the 3D route gains over the path-only check
            assert hybrid["3d"].min() > path_only["3d"].max()
    # at the held-out distance both are the error measured there
    at_d0 = result(True).gains_at(12.0, 0.0, distance=d0)
    np.testing.assert_allclose(at_d0["3d"], result(False).gains_at(12.0, 0.0, distance=d0)["3d"], rtol=1e-6)


def test_a_run_with_the_leave_one_out_at_the_path_rebuilds_each_input_at_both_cameras(tmp_path) -> None:
    import json

    from sparsevid.data.nerfstudio import write_transforms
    from sparsevid.data.synthetic import make_scene
    from sparsevid.pipeline import named_config, run_pipeline

    scene = make_scene(width=64, height=48)
    write_transforms(scene, tmp_path / "ds" / "transforms.json", write_images=True)
    cfg = named_config("default", input=tmp_path / "ds", output=tmp_path / "out", keyframes=list(KEYS),
                       device="cpu", steps=60)
    cfg.fuse.loo_at_path, cfg.write_video, cfg.write_report = True, False, False
    res = run_pipeline(cfg)
    r3 = res.route3d
    assert set(r3.loo) == set(r3.loo_path) == {9, 19}
    for k in (9, 19):  # the same model seen from two cameras: another image
        assert np.abs(r3.loo[k][0] - r3.loo_path[k][0]).mean() > 1e-3
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["config"]["fuse"]["loo_at_path"] is True
    q = info["quality_estimate"]
    assert q["route"] == "fused 2D + 3D" and np.isfinite(q["psnr_heldout"])
    assert len(res.frames) == 30 and res.metrics["heldout"]["count"] == 26
    # the kept 3D route fused again with the run's own settings gives the run's in-between frames
    from sparsevid.pipeline import cpu_profile

    again = r3.fuse(cpu_profile(cfg).fuse, "cpu", cfg.seed).frames
    for i in set(range(30)) - set(KEYS):
        np.testing.assert_array_equal(again[i], res.frames[i])
    # ... and its rebuilds at the path's camera are part of that: without them the frames differ
    import dataclasses

    own_only = dataclasses.replace(r3, loo_path=None).fuse(cpu_profile(cfg).fuse, "cpu", cfg.seed).frames
    assert any(np.any(own_only[i] != res.frames[i]) for i in set(range(30)) - set(KEYS))
