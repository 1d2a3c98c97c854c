"""The nerfstudio methods (issue 17), in the nerfstudio environment (``make test-nerfstudio``; skipped elsewhere).

On the CPU, end to end with nerfstudio's own commands: ``sparsevid poses`` on the embedded demo writes the
transforms.json; ``ns-train sparsevid-nerfacto`` trains 60 steps on it with a progressive round at step 30 (a small
nerfacto: the test checks the plumbing, not the quality); ``ns-render`` renders the run; ``sparsevid run
--from-nerfstudio`` makes the 30-frame time-exact MP4 from it; ``--load-checkpoint`` continues it with its own
rounds. splatfacto needs CUDA (gsplat): here only its registration; ``tools/gpu/ns_splatfacto.sh`` trains it on a GPU.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("nerfstudio", reason="nerfstudio is not installed here (make test-nerfstudio)")

BIN = Path(sys.executable).parent
#: a small nerfacto for 2 CPU cores (the defaults take ~8 s a step there), evaluation off
CPU_FLAGS = ["--machine.device-type", "cpu", "--vis", "tensorboard", "--viewer.quit-on-train-completion", "True",
             "--steps-per-eval-image", "100000", "--steps-per-eval-batch", "100000",
             "--steps-per-eval-all-images", "100000",
             "--pipeline.datamanager.train-num-rays-per-batch", "512",
             "--pipeline.model.num-proposal-samples-per-ray", "32", "16",
             "--pipeline.model.num-nerf-samples-per-ray", "16", "--pipeline.model.num-levels", "8",
             "--pipeline.model.log2-hashmap-size", "15", "--pipeline.model.max-res", "256",
             "--pipeline.model.hidden-dim", "32", "--pipeline.model.hidden-dim-color", "32",
             "--pipeline.model.eval-num-rays-per-chunk", "4096"]
DOWNSCALE = 8  # the demo's 848x480 -> 106x60 (nerfstudio's images_8 folder)


def _run(cmd: list, cwd: Path, timeout: int = 900) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    dt = time.perf_counter() - t0
    assert p.returncode == 0, f"{cmd[0]} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    return p, dt


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ns")


@pytest.fixture(scope="module")
def demo_poses(work) -> Path:
    """``sparsevid poses`` of the embedded demo (its transforms.json, unchanged) plus ``images_8/``: the copies
    at 1/8 that nerfstudio's ``--downscale-factor 8`` reads (nerfstudio makes them with ffmpeg when missing)."""
    from sparsevid.data.load import demo_path

    out = work / "poses"
    _run([sys.executable, "-m", "sparsevid", "-q", "poses", demo_path(), "-o", out], work)
    (out / f"images_{DOWNSCALE}").mkdir()
    for p in sorted((out / "images").glob("*.png")):
        im = cv2.imread(str(p))
        h, w = im.shape[:2]
        cv2.imwrite(str(out / f"images_{DOWNSCALE}" / p.name),
                    cv2.resize(im, (w // DOWNSCALE, h // DOWNSCALE), interpolation=cv2.INTER_AREA))
    return out


def _train(work: Path, data: Path, name: str, extra: list) -> tuple[Path, float]:
    cmd = [BIN / "ns-train", "sparsevid-nerfacto", "--data", data / "transforms.json", "--output-dir", work / "runs",
           "--experiment-name", name, "--timestamp", "t", *CPU_FLAGS, *extra,
           "nerfstudio-data", "--downscale-factor", str(DOWNSCALE)]
    _, dt = _run(cmd, work)
    return work / "runs" / name / "sparsevid-nerfacto" / "t", dt


@pytest.fixture(scope="module")
def trained(work, demo_poses) -> Path:
    """The acceptance run: 60 steps on the CPU, one progressive round at step 30."""
    run, dt = _train(work, demo_poses, "demo", ["--max-num-iterations", "60", "--pipeline.progressive.fix-steps", "30"])
    print(f"ns-train sparsevid-nerfacto, 60 steps on the CPU: {dt:.1f} s")
    return run


def test_methods_registered():
    from nerfstudio.models.nerfacto import NerfactoModel
    from nerfstudio.models.splatfacto import SplatfactoModel
    from nerfstudio.plugins.registry import discover_methods

    from sparsevid.nerfstudio.pipeline import SparsevidPipeline

    methods, descriptions = discover_methods()
    assert {"sparsevid-nerfacto", "sparsevid-splatfacto"} <= set(methods)
    for name, model_cls in (("sparsevid-nerfacto", NerfactoModel), ("sparsevid-splatfacto", SplatfactoModel)):
        cfg = methods[name]
        assert cfg.method_name == name and cfg.pipeline._target is SparsevidPipeline
        assert issubclass(cfg.pipeline.model._target, model_cls)  # ns-export gaussian-splat takes splatfacto's
        assert cfg.pipeline.datamanager.dataparser.eval_mode == "all"  # a handful of frames: all train
        assert cfg.pipeline.fixer.name == "reproject" and cfg.pipeline.fixer.progressive
    assert methods["sparsevid-splatfacto"].pipeline.datamanager.dataparser.load_3D_points


def test_train_adds_pseudo_views_with_confidence_weights(trained):
    from safetensors.torch import load_file

    from sparsevid.fixer.progressive import ProgressiveConfig

    assert (trained / "nerfstudio_models" / "step-000000059.ckpt").is_file()
    rec = json.loads((trained / "sparsevid_progressive.json").read_text())
    assert rec["fixer"] == "reproject" and rec["num_inputs"] == 4
    assert [r["step"] for r in rec["rounds"]] == [30]
    n = rec["rounds"][0]["num_views"]
    assert n == rec["num_pseudo_views"] == 8  # the 26 in-between path cameras, capped at 8 on the CPU
    assert rec["pseudo_steps"] >= 5  # about half of the 30 steps after the round (pseudo_fraction 0.5)
    views = load_file(str(trained / "sparsevid_pseudo_views.safetensors"))
    masks, weights = views["masks"].numpy(), views["weights"].numpy()
    assert views["images"].shape == (8, 88, 156, 3) and masks.shape == (8, 88, 156, 1)  # the full-FOV canvas
    assert np.allclose(weights, ProgressiveConfig().pseudo_weight) and (views["rounds"] == 0).all()
    # the confidence weights: in [0, 1], zero below min_confidence, graded above it, not a plain validity mask
    lo = ProgressiveConfig().min_confidence
    assert masks.min() >= 0 and masks.max() <= 1
    assert np.all((masks == 0) | (masks >= lo - 1e-6))
    inner = masks[(masks > 0) & (masks < 1)]
    assert inner.size > 0.05 * masks.size and np.unique(np.round(inner, 3)).size > 20
    assert abs(masks.mean() - rec["rounds"][0]["mean_confidence"]) < 1e-4
    # the pseudo cameras lie off the inputs (between them and the path's in-between cameras)
    c2ws = views["c2ws"].numpy()
    assert np.linalg.norm(np.diff(c2ws[:, :3, 3], axis=0), axis=1).min() > 0


def test_ns_render_writes_frames(trained, work):
    out = work / "renders"
    _run([BIN / "ns-render", "dataset", "--load-config", trained / "config.yml", "--output-path", out,
          "--split", "train", "--rendered-output-names", "rgb", "--image-format", "png"], work)
    frames = sorted((out / "train" / "rgb").glob("*.png"))
    assert [f.name for f in frames] == ["frame_0000.png", "frame_0009.png", "frame_0019.png", "frame_0029.png"]
    im = cv2.imread(str(frames[1]))
    assert im.shape == (60, 106, 3) and im.std() > 10  # an image, not a flat colour


def test_time_exact_video_from_nerfstudio(trained, work):
    import av

    out = work / "video"
    _, dt = _run([sys.executable, "-m", "sparsevid", "run", "--from-nerfstudio", trained / "config.yml", "-o", out,
                  "--scale", "0.125", "--device", "cpu"], work)
    print(f"sparsevid run --from-nerfstudio: {dt:.1f} s")
    with av.open(str(out / "video.mp4")) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        rate = s.average_rate
    assert len(frames) == 30 and frames[0].shape == (60, 106, 3)
    assert abs(float(rate) - 30000 / 1001) < 1e-3  # the demo's exact rate, from its transforms.json
    assert len(list((out / "frames").glob("frame_*.png"))) == 30
    run = json.loads((out / "run.json").read_text())
    assert run["model"].startswith("nerfstudio sparsevid-nerfacto") and run["num_frames"] == 30
    assert "training" not in run["stage_seconds"]  # the model was rendered, not trained again
    assert run["config"]["from_nerfstudio"] == str(trained / "config.yml")
    # camera_path.json (for ns-render camera-path) is in the model's world: at the input times, nerfstudio's own
    # training cameras (it was written in the dataset's world, so replaying it rendered from elsewhere)
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    outs = NerfstudioDataParserConfig(data=Path(run["config"]["input"]), eval_mode="all",
                                      downscale_factor=DOWNSCALE).setup().get_dataparser_outputs("train")
    ns_c2w = outs.cameras.camera_to_worlds.double().numpy()
    path = json.loads((out / "camera_path.json").read_text())["camera_path"]
    ours = np.array([np.reshape(path[k]["camera_to_world"], (4, 4))[:3] for k in (0, 9, 19, 29)])
    assert np.abs(ours - ns_c2w).max() < 1e-5


def test_renderer_maps_the_dataset_world_to_the_model(trained, demo_poses):
    """Poses of the dataset, through dataparser_transforms.json, are nerfstudio's own training cameras; a render at
    an input camera matches that input (undistorted) better than one a little off it."""
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    from sparsevid.data.load import load_scene
    from sparsevid.eval.metrics import psnr
    from sparsevid.geometry import opencv_to_opengl
    from sparsevid.nerfstudio.convert import dataset_to_model
    from sparsevid.nerfstudio.video import load_renderer
    from sparsevid.poses.undistort import Undistorter
    from sparsevid.render.frames import to_uint8

    model, data = load_renderer(trained / "config.yml", "cpu")
    scene = load_scene(data)
    outs = NerfstudioDataParserConfig(data=data, eval_mode="all", downscale_factor=DOWNSCALE).setup() \
        .get_dataparser_outputs("train")
    ns_c2w = outs.cameras.camera_to_worlds.double().numpy()
    ours = opencv_to_opengl(dataset_to_model(scene.c2ws(), model.transform, model.scale))[:, :3, :]
    assert np.abs(ours - ns_c2w).max() < 1e-5
    und = Undistorter.for_camera(scene.camera, 1 / DOWNSCALE, "crop")
    f = scene.frames[1]
    img = und.undistort_image(cv2.resize(f.image, und.size, interpolation=cv2.INTER_AREA))
    off = f.c2w.copy()
    off[:3, 3] += 0.5 * np.linalg.norm(scene.frames[2].c2w[:3, 3] - f.c2w[:3, 3]) * off[:3, 0]  # sideways
    K = und.pinhole.K
    w, h = und.canvas_size
    out = model.render(np.stack([f.c2w, off]), np.stack([K, K]), w, h)
    rgb = out["rgb"].cpu().numpy()
    assert out["depth"].shape == (2, h, w, 1) and float(out["depth"].median()) > 0
    assert psnr(to_uint8(rgb[0]), img) > psnr(to_uint8(rgb[1]), img) + 1.0


def test_load_checkpoint_runs_its_own_rounds(trained, work, demo_poses):
    """The two-step recipe: continue a trained run from its checkpoint; the rounds count from its first step."""
    ckpt = trained / "nerfstudio_models" / "step-000000059.ckpt"
    run, _ = _train(work, demo_poses, "continued", ["--load-checkpoint", ckpt, "--max-num-iterations", "10",
                                                    "--pipeline.progressive.fix-steps", "5"])
    rec = json.loads((run / "sparsevid_progressive.json").read_text())
    assert rec["start_step"] == 60 and [r["step"] for r in rec["rounds"]] == [65]
    assert (run / "nerfstudio_models" / "step-000000069.ckpt").is_file()


def test_sparsevid_trainer_under_nerfstudios_gsplat(tiny_scene):
    """sparsevid's own CPU trainer with nerfstudio's gsplat pin (1.4.0): densification runs; exporting says in one
    line that it needs gsplat >= 1.5."""
    import gsplat

    from sparsevid.errors import SparsevidError
    from sparsevid.gaussians.ply import export_gaussians
    from sparsevid.gaussians.trainer import Trainer, TrainConfig, views_from_scene

    cfg = TrainConfig(steps=60, quiet=True, sh_degree=0, schedule_ref_steps=0)
    cfg.densify.refine_start_iter, cfg.densify.refine_every = 10, 10
    tr = Trainer(cfg, views_from_scene(tiny_scene), tiny_scene.points, tiny_scene.point_colors, device="cpu")
    n0 = tr.num_gaussians
    summary = tr.train()
    assert tr.num_gaussians != n0 and np.isfinite(summary["loss"])
    if gsplat.__version__.startswith("1.4"):
        with pytest.raises(SparsevidError, match="gsplat >= 1.5"):
            export_gaussians(tr.params, Path("unused"))


@pytest.mark.parametrize("variant", ["applied keys", "colmap folder"])
def test_model_transform_undoes_what_ns_process_data_applied(work, demo_poses, variant):
    """A dataset made by ns-process-data carries ``applied_transform`` (and may carry ``applied_scale``); one with
    ``colmap/sparse/0`` and no key gets nerfstudio's default. nerfstudio folds them into dataparser_transforms.json,
    which then maps the *original* world: the file's poses through :func:`model_transform` must still land on
    nerfstudio's own training cameras."""
    import shutil

    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    from sparsevid.data.load import load_scene
    from sparsevid.geometry import opencv_to_opengl
    from sparsevid.nerfstudio.convert import dataset_to_model, model_transform

    data = work / f"ds-{variant.replace(' ', '-')}"
    shutil.copytree(demo_poses, data)
    meta = json.loads((data / "transforms.json").read_text())
    if variant == "applied keys":
        meta["applied_transform"] = [[0, 1, 0, 0.3], [1, 0, 0, -0.2], [0, 0, -1, 0.1]]
        meta["applied_scale"] = 2.5
    else:
        (data / "colmap" / "sparse" / "0").mkdir(parents=True)
    (data / "transforms.json").write_text(json.dumps(meta))
    outs = NerfstudioDataParserConfig(data=data, eval_mode="all", downscale_factor=DOWNSCALE).setup() \
        .get_dataparser_outputs("train")
    saved = {"transform": outs.dataparser_transform.tolist(), "scale": float(outs.dataparser_scale)}
    (data / "dataparser_transforms.json").write_text(json.dumps(saved))  # as ns-train saves it
    transform, scale = model_transform(data / "dataparser_transforms.json", data / "transforms.json", data)
    scene = load_scene(data)
    ours = opencv_to_opengl(dataset_to_model(scene.c2ws(), transform, scale))[:, :3, :]
    assert np.abs(ours - outs.cameras.camera_to_worlds.double().numpy()).max() < 1e-5
    naive = np.asarray(saved["transform"] + [[0, 0, 0, 1]]), saved["scale"]  # what was used before
    assert np.abs(opencv_to_opengl(dataset_to_model(scene.c2ws(), *naive))[:, :3, :]
                  - outs.cameras.camera_to_worlds.double().numpy()).max() > 0.1
