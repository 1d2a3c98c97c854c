"""The whole pipeline on tiny synthetic scenes, on the CPU: output layout, run.json, the 2D route
when no 3D model passes its checks, exact time pairing at another output frame rate."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import torch
import pytest

from sparsevid.data.synthetic import make_scene
from sparsevid.data.nerfstudio import write_transforms
from sparsevid.pipeline import named_config, run_pipeline
from sparsevid.video.io import write_frames


def _frames_dir(tmp_path: Path, width=96, height=64) -> Path:
    """An unposed frames folder: the synthetic corridor, all 30 frames (inputs chosen by keyframes)."""
    scene = make_scene(width=width, height=height, keyframes=tuple(range(30)))
    d = tmp_path / "frames_in"
    write_frames([f.image for f in scene.frames], d)
    return d


def sharp(img: np.ndarray) -> float:
    from sparsevid.eval.metrics import laplacian_variance

    return laplacian_variance(img)


def test_flow_only_route_at_60fps_scores_the_right_frames(tmp_path):
    src = _frames_dir(tmp_path)
    cfg = named_config("flow_only", input=src, output=tmp_path / "out", keyframes=[0, 9, 19, 29], device="cpu")
    cfg.path.fps = 60
    cfg.video.crf = 15
    res = run_pipeline(cfg)
    assert len(res.frames) == 60
    m = res.metrics
    # output frame 2k shows source frame k: 26 held-out + 4 inputs scored, the inputs exact but for the
    # softening to their neighbours' detail (checked below)
    assert m["heldout"]["count"] == 26 and m["inputs"]["count"] == 4
    assert m["inputs"]["psnr"] > 35
    src_frames = sorted(src.glob("*.png"))
    import cv2
    f9 = cv2.cvtColor(cv2.imread(str(src_frames[9])), cv2.COLOR_BGR2RGB)
    out = tmp_path / "out"
    assert (out / "video.mp4").is_file() and (out / "quality.json").is_file()
    assert b" crf=15.0 " in (out / "video.mp4").read_bytes()  # x264 records its settings in the stream
    info = json.loads((out / "run.json").read_text())
    # input-time frames are the inputs, softened at most to the detail of the frames next to them
    sigmas = info["key_detail_sigma"]
    assert set(sigmas) <= {"0", "18", "38", "58"} and all(0 < s <= 1.5 for s in sigmas.values())
    if "18" in sigmas:
        assert np.abs(res.frames[18].astype(int) - f9).mean() < 3 and sharp(res.frames[18]) < sharp(f9)
    else:
        assert np.array_equal(res.frames[18], f9)
    assert all(sharp(res.frames[int(k)]) <= max(sharp(res.frames[int(k) + d]) for d in (-1, 1)
                                                if 0 <= int(k) + d < 60) for k in sigmas)
    assert info["quality_estimate"]["psnr_heldout"] > 10 and info["fps"] == "60"
    assert info["num_gaussians"] is None and info["metrics"]["heldout"]["count"] == 26
    # `sparsevid eval` pairs the 60 output frames with the clip's 30 by time, as the run did (it used to pair
    # output frame k with source frame k, and take the inputs at output positions 0, 18, 38, 58)
    from sparsevid.cli import main

    assert main(["eval", str(out), "--gt", str(src), "--metrics", str(tmp_path / "m.json")]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["input_indices"] == [0, 9, 19, 29] and m["heldout"]["count"] == 26
    assert m["heldout"]["psnr"] == pytest.approx(res.metrics["heldout"]["psnr"], abs=1e-6)


def test_pose_failure_falls_back_to_the_2d_route(tmp_path, monkeypatch):
    """No 3D model passes its checks: one warning line, and still the full output."""
    from sparsevid.errors import PoseFailure
    import sparsevid.poses.sfm as sfm

    def fail(scene, cfg, colmap_log=None, work_dir=None):
        raise PoseFailure("every pose attempt gave an implausible model (test)", fix="give --focal")
    monkeypatch.setattr(sfm, "estimate_poses", fail)
    src = _frames_dir(tmp_path)
    cfg = named_config("default", input=src, output=tmp_path / "out", keyframes=[0, 9, 19, 29], device="cpu")
    res = run_pipeline(cfg)
    assert len(res.frames) == 30 and (tmp_path / "out" / "video.mp4").is_file()
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert "implausible" in info["poses"]["failed"]
    assert info["quality_estimate"]["route"].startswith("2D")
    # the warning line is in run.json too (batch's summary reads it from there for a finished clip)
    assert any(w.startswith("no 3D model passes its checks (every pose attempt") for w in info["warnings"])
    with pytest.raises(PoseFailure) as failure:  # the 3D route alone has nothing to fall back to
        run_pipeline(named_config("route3d", input=src, output=tmp_path / "out3", keyframes=[0, 9, 19, 29],
                                  device="cpu"))
    info = json.loads((tmp_path / "out3" / "run.json").read_text())  # a failed run says so (batch retries it)
    assert info["status"] == "failed" and info["error"] == failure.value.one_line()


def test_default_run_on_a_tiny_posed_scene(tmp_path):
    scene = make_scene(width=64, height=48)
    ds = tmp_path / "ds"
    write_transforms(scene, ds / "transforms.json", write_images=True)
    cfg = named_config("default", input=ds, output=tmp_path / "out", keyframes=[0, 9, 19, 29], device="cpu",
                       steps=60)
    cfg.progressive.fix_steps = [30]
    cfg.fixer.progressive = True
    res = run_pipeline(cfg)
    out = tmp_path / "out"
    for name in ("video.mp4", "frames", "cameras.json", "contact_sheet.png", "metrics.json", "run.json",
                 "quality.json"):
        assert (out / name).exists(), name
    info = json.loads((out / "run.json").read_text())
    q = info["quality_estimate"]
    assert q["route"] == "fused 2D + 3D" and 0.0 <= q["gain_3d"] <= 1.0
    from sparsevid.eval.rife import weights_path

    learned = {"learned"} if weights_path() is not None else set()  # the learned route, where its weights are
    assert set(q["routes"]) == {"9", "19"} and set(q["routes"]["9"]) == {"2d", "3d"} | learned
    assert set(q["routes_used"]) == ({"2d", "3d"} | learned) - set(q["routes_off"])
    # the rigid check's part of the frame that moved by itself, per pair of neighbouring inputs (a still scene)
    assert set(q["moved_by_itself"]) == {"0-9", "9-19", "19-29"}
    assert all(0.0 <= v <= 1.0 for v in q["moved_by_itself"].values())
    assert res.route3d.rigid is not None and res.route3d.rigid[(9, 19)][0].shape == (48, 64)
    assert {"training", "rendering", "enhance", "fusing"} <= set(info["stage_seconds"])
    assert res.metrics["heldout"]["count"] == 26
    # what the fixer did is in run.json and on the report page
    rounds = info["fixer"]["progressive_rounds"]
    assert info["fixer"]["name"] == "reproject" and info["fixer"]["enhance"] is True and info["status"] == "done"
    assert [(r["round"], r["step"]) for r in rounds] == [(1, 30)] and rounds[0]["views"] > 0
    page = (out / "report.html").read_text()
    assert '<section id="run">' in page and "round 1 at step 30" in page


def test_device_cpu_keeps_a_difix_replica_on_the_cpu(tmp_path, monkeypatch):
    """``--device cpu`` with a GPU present: the fixer ("auto" device) follows the trainer onto the CPU."""
    pytest.importorskip("diffusers")
    pytest.importorskip("peft")
    import torch

    import sparsevid.pipeline as pipeline
    from test_difix import write_replica

    weights = tmp_path / "difix"
    write_replica(weights, reference=False, text_encoder=False)
    monkeypatch.setenv("SPARSEVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU "is there"
    built = []
    real = pipeline.build_fixer
    monkeypatch.setattr(pipeline, "build_fixer", lambda *a, **k: built.append(real(*a, **k)) or built[-1])
    scene = make_scene(width=48, height=32)
    ds = tmp_path / "ds"
    write_transforms(scene, ds / "transforms.json", write_images=True)
    cfg = named_config("enhance_only", input=ds, output=tmp_path / "out", keyframes=[0, 9, 19, 29],
                       device="cpu", steps=5)
    cfg.fixer.name, cfg.fixer.difix_weights = "difix", str(weights)
    cfg.write_video = cfg.write_report = False
    assert cfg.fixer.device == "auto"
    res = run_pipeline(cfg)
    assert len(built) == 1 and built[0].pipe.device.type == "cpu"
    assert len(res.frames) == 30
    fixer = json.loads((tmp_path / "out" / "run.json").read_text())["fixer"]
    assert fixer["weights"] == str(weights) and fixer["reference_views"] == 0  # which weights ran, and how


def test_config_yaml_round_trip(tmp_path):
    """RunConfig -> config.yaml -> RunConfig is the same config (nested configs, paths, tuples, fractions)."""
    from fractions import Fraction

    from sparsevid.configfile import config_from_dict, config_to_dict, dump_yaml
    from sparsevid.errors import SparsevidError
    from sparsevid.pipeline import RunConfig, read_run_config, write_run_config

    cfg = named_config("route3d", input=tmp_path / "in", output=tmp_path / "out", keyframes=[0, 9, 19, 29],
                       fps=29.97, device="cpu", seed=3, steps=123, poses_from=tmp_path / "poses")
    cfg.path.fps, cfg.path.duration = Fraction(60000, 1001), 1.5
    cfg.train.background = (0.5, 0.25, 1.0)
    cfg.train.densify.refine_every = 7
    cfg.progressive.fix_steps = [30, 60]
    cfg.fuse.detail_choices = (1.0, 3.0)
    cfg.fixer.options = {"use_flow": False}
    cfg.pose.focal = 500.0
    assert config_from_dict(RunConfig, config_to_dict(cfg)) == cfg
    write_run_config(cfg, tmp_path)
    text = (tmp_path / "config.yaml").read_text()
    assert "fps: 60000/1001" in text and "poses_from: " + str(tmp_path / "poses") in text
    back = read_run_config(tmp_path / "config.yaml")
    assert back == cfg and isinstance(back.output, Path) and back.train.background == (0.5, 0.25, 1.0)
    assert read_run_config(_write(tmp_path / "short.yaml", "seed: 5\nfuse: {mode: 2d}\n")) == RunConfig(
        seed=5, fuse=dataclasses.replace(RunConfig().fuse, mode="2d"))
    with pytest.raises(SparsevidError, match=r"unknown setting train\.stepz \(did you mean train\.steps\?\)"):
        read_run_config(_write(tmp_path / "bad.yaml", dump_yaml(cfg).replace("  steps: 123", "  stepz: 123")))
    with pytest.raises(SparsevidError, match="seed must be int"):
        read_run_config(_write(tmp_path / "bad2.yaml", "seed: three\n"))
    # a Latin-1 file, or a video passed by mistake: one line, not a UnicodeDecodeError traceback
    (tmp_path / "latin1.yaml").write_bytes(b"# r\xe9glages\ntrain:\n  steps: 100\n")
    with pytest.raises(SparsevidError, match="not a UTF-8 text file"):
        read_run_config(tmp_path / "latin1.yaml")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_run_writes_config_yaml_and_run_config_reproduces_it(tmp_path):
    """`sparsevid run` writes OUT/config.yaml; `run --config` of it makes the same frames; flags override it."""
    import yaml

    from sparsevid.cli import main
    from sparsevid.pipeline import read_run_config
    from sparsevid.video.io import read_frames

    src = _frames_dir(tmp_path, width=64, height=48)
    first = tmp_path / "first"
    assert main(["run", str(src), "-o", str(first), "--config-name", "flow_only", "--keyframes", "0,9,19,29",
                 "--device", "cpu", "--out-fps", "60", "--no-video", "--seed", "2"]) == 0
    cfg = read_run_config(first / "config.yaml")
    assert cfg.fuse.mode == "2d" and cfg.path.fps == 60 and cfg.seed == 2 and not cfg.write_video
    assert cfg.keyframes == [0, 9, 19, 29] and cfg.input == src and cfg.output == first

    again = tmp_path / "again"
    assert main(["run", "--config", str(first / "config.yaml"), "-o", str(again)]) == 0
    a, b = read_frames(first / "frames"), read_frames(again / "frames")
    assert sorted(a) == sorted(b) == list(range(60)) and all(np.array_equal(a[k], b[k]) for k in a)
    da, db = (yaml.safe_load((d / "config.yaml").read_text()) for d in (first, again))
    assert db.pop("output") == str(again) and da.pop("output") == str(first) and da == db

    third = tmp_path / "third"  # a flag on the command line wins over the file, the rest stays
    assert main(["run", "--config", str(first / "config.yaml"), "-o", str(third), "--num-frames", "20",
                 "--seed", "0"]) == 0
    c = read_run_config(third / "config.yaml")
    assert c.path.num_frames == 20 and c.seed == 0 and c.path.fps == 60 and c.fuse.mode == "2d"
    assert len(read_frames(third / "frames")) == 20
    assert main(["run", "--config", str(first / "config.yaml"), "--config-name", "default", "-o",
                 str(tmp_path / "x")]) == 2


def test_an_untrained_model_without_the_fixer_does_not_pull_the_fusion_below_flow(tmp_path):
    """``--no-enhance`` with a model that fits nothing (3 training steps): the leave-one-out check
    rebuilds the held-out inputs from the plain render, finds the 3D route worse, and with the 2D
    route's error scaled to each frame's distance the fused video stays with the flow (it used to
    fuse the render unchecked: 0.95 dB below flow here, 6 dB below on the shared clip at 10 steps)."""
    scene = make_scene(width=64, height=48)
    ds = tmp_path / "ds"
    write_transforms(scene, ds / "transforms.json", write_images=True)
    common = dict(input=ds, keyframes=[0, 9, 19, 29], device="cpu")
    flow = run_pipeline(named_config("flow_only", output=tmp_path / "flow", **common))
    cfg = named_config("default", output=tmp_path / "bad", steps=3, **common)
    cfg.fixer.enhance = False
    bad = run_pipeline(cfg)
    q = bad.quality_estimate
    assert {"2d", "3d"} <= set(q["routes"]["9"]) and q["routes"]["9"]["3d"] < q["routes"]["9"]["2d"]
    # the 3D route was trained and rebuilt the inputs, but the video is the 2D routes' where it is left out
    assert q["route"] == ("2D (optical flow)" if "3d" in q["routes_off"] else "fused 2D + 3D")
    assert bad.metrics["heldout"]["psnr"] >= flow.metrics["heldout"]["psnr"] - 0.3


def test_a_3d_route_left_out_is_not_reported_as_used(tmp_path):
    """When the leave-one-out check leaves the trained 3D route out of the video (here the path check, made
    to fail on purpose), quality.json names the 2D route, with no 3D gain and no rigid-check figures."""
    scene = make_scene(width=64, height=48)
    ds = tmp_path / "ds"
    write_transforms(scene, ds / "transforms.json", write_images=True)
    cfg = named_config("default", input=ds, output=tmp_path / "out", keyframes=[0, 9, 19, 29], device="cpu",
                       steps=20)
    cfg.fuse.path_check_db, cfg.write_video, cfg.write_report = -100.0, False, False
    q = run_pipeline(cfg).quality_estimate
    assert "3d" in q["routes_off"] and "3d" not in q["routes_used"] and "3d" in q["routes"]["9"]
    assert q["route"] == "2D (optical flow)" and q["gain_3d"] is None and "moved_by_itself" not in q
    on_disk = json.loads((tmp_path / "out" / "quality.json").read_text(),
                         parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert on_disk["route"] == q["route"]
    from sparsevid.report import write_report

    page = write_report(tmp_path / "out").read_text()  # the header does not list the Gaussians as the video's
    assert re.search(r"Gaussians</t[hd]>\s*<td>[0-9,]+ \(not in the video\)", page), page[:3000]


def test_the_same_seed_gives_bit_identical_runs_pose_stage_included(tmp_path):
    """`--seed` makes a CPU run repeatable end to end: poses estimated from unposed frames, the trained
    Gaussians, the learned route and the fusion (on 1 or 2 threads) come out the same bit for bit; another seed
    trains other Gaussians (so the comparison can fail)."""
    from safetensors.numpy import load_file

    from sparsevid.gaussians.trainer import CHECKPOINT_NAME

    src = _frames_dir(tmp_path, width=128, height=96)

    def run(name, seed, threads):
        cfg = named_config("default", input=src, output=tmp_path / name, keyframes=[0, 9, 19, 29], device="cpu",
                           steps=60, seed=seed)
        cfg.fuse.threads, cfg.write_video, cfg.write_report = threads, False, False
        # the caller's process-wide RNGs, in another state for each run: neither read nor changed by the run
        np.random.seed(100 + threads)
        torch.manual_seed(100 + threads)
        before = np.random.get_state()[1].copy(), torch.get_rng_state()
        result = run_pipeline(cfg)
        assert np.array_equal(np.random.get_state()[1], before[0]) and torch.equal(torch.get_rng_state(), before[1])
        return result, load_file(tmp_path / name / "train" / CHECKPOINT_NAME)

    (a, ga), (b, gb), (_, gc) = run("a", 0, 1), run("b", 0, 2), run("c", 1, 1)
    assert "3d" in a.quality_estimate["routes"]["9"]  # the pose stage passed and the model was trained
    pa, pb = (json.loads((tmp_path / n / "cameras.json").read_text()) for n in ("a", "b"))
    assert pa == pb
    assert ga.keys() == gb.keys() and all(np.array_equal(ga[k], gb[k]) for k in ga)
    assert not all(ga[k].shape == gc[k].shape and np.array_equal(ga[k], gc[k]) for k in ga)
    assert len(a.frames) == len(b.frames) == 30 and all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))


def test_a_video_whose_every_frame_is_an_input_is_written_as_it_is_with_one_line(tmp_path, capsys):
    """``run clip.mp4`` without --keyframes: every output frame is an input, so there is nothing to make; no pose
    stage, training or fusion runs, the frames are the inputs, run.json and the report say why, and one line
    suggests --keyframes. Where 3D work is given or asked for (poses, --fuse.mode 3d) or the inputs are re-made
    (--no-keep-inputs), it runs as before; an output rate that only meets the inputs is named as the cause."""
    from tests.test_data import make_video
    from sparsevid.data.load import load_scene
    from sparsevid.pipeline import nothing_between
    from sparsevid.video.io import read_frames

    video = make_video(tmp_path / "clip.mp4", n=12)
    res = run_pipeline(named_config("default", input=video, output=tmp_path / "out", device="cpu"))
    err = capsys.readouterr().err
    assert err.count("there is nothing to make between them") == 1
    assert "every frame of the input is an input (12 frames, 0-11)" in err and "--keyframes 0,4,7,11" in err
    out = tmp_path / "out"
    assert not (out / "poses").exists() and not (out / "train").exists()
    assert res.quality_estimate is None and res.route3d is None and "training" not in res.stage_seconds
    inputs = {f.index: f.image for f in load_scene(video).frames}
    back = read_frames(out / "frames")
    assert len(back) == 12 and all(np.array_equal(back[k], inputs[k]) for k in range(12))
    assert json.loads((out / "run.json").read_text())["inputs_only"] is True
    page = (out / "report.html").read_text()
    assert "every output frame is an input frame, written as it is" in page and "came from the input" not in page

    posed = make_scene(width=64, height=48, keyframes=tuple(range(30)))
    cfg = named_config("default", keyframes=None)
    assert not nothing_between(cfg, posed)  # a posed dataset: its Gaussians and camera path are outputs too
    unposed = load_scene(video)
    assert not nothing_between(named_config("default", keep_inputs=False), unposed)
    cfg3d = named_config("default")
    cfg3d.fuse.mode = "3d"
    assert not nothing_between(cfg3d, unposed)
    capsys.readouterr()
    sparse = load_scene(video, keyframes=[0, 2, 4, 6, 8, 10])
    half = named_config("default", keyframes=[0, 2, 4, 6, 8, 10])
    half.path.fps = "15000/1001"
    assert nothing_between(half, sparse)
    assert "every output frame (6 at 14.985 fps) falls on an input's time" in capsys.readouterr().err


def test_no_keep_checkpoint_deletes_the_checkpoint_once_the_run_is_done(tmp_path, capsys):
    """--no-keep-checkpoint (batches of many clips): the trainer's checkpoint goes once the run is done, the
    exports stay, and a batch over the same clip takes it for finished (the setting changes no result)."""
    from sparsevid.batch.jobs import clip_state
    from sparsevid.fingerprint import _differences

    scene = make_scene(width=64, height=48)
    ds = tmp_path / "ds"
    write_transforms(scene, ds / "transforms.json", write_images=True)
    cfg = named_config("default", input=ds, output=tmp_path / "out", keyframes=[0, 9, 19, 29], device="cpu",
                       steps=40, keep_checkpoint=False)
    run_pipeline(cfg)
    train = tmp_path / "out" / "train"
    assert not (train / "checkpoint.safetensors").exists()
    assert (train / "point_cloud.ply").is_file() and (train / "point_cloud.splat").is_file()
    assert "deleted the trainer's checkpoint" in capsys.readouterr().err
    assert clip_state(tmp_path / "out") == "finished"
    assert _differences({"config": {"keep_checkpoint": True}}, {"config": {"keep_checkpoint": False}}) == ([], [])
