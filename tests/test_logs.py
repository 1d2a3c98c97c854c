"""Logs: COLMAP's glog lines are captured (poses/colmap.log), not printed; progress without a terminal
is a whole plain line every few seconds, not one bar cut off at 80 columns."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from sparsevid import log

DEMO = Path(__file__).resolve().parents[1] / "sparsevid" / "data" / "demo"
GLOG = re.compile(r"^\W*(?:\[[0-9;]*m)?[IWEF]20\d{6} ", re.M)


def test_capture_native_stderr(capfd):
    sink: list[str] = []
    with log.capture_native_stderr(sink):
        os.write(2, b"I20261202 04:19:26.033034 1 bundle_adjustment.cc:46] native chatter\n")
        print("python line", file=sys.stderr)
    err = capfd.readouterr().err
    assert "native chatter" not in err and "python line" in err
    assert "native chatter" in "".join(sink)
    log.set_verbose(True)
    try:
        with log.capture_native_stderr(sink):
            os.write(2, b"shown when verbose\n")
    finally:
        log.set_verbose(False)
    assert "shown when verbose" in capfd.readouterr().err


def test_plain_progress_without_terminal(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(log, "console", Console(file=buf, width=80, force_terminal=False, highlight=False))
    monkeypatch.setattr(log, "PLAIN_PROGRESS_INTERVAL", 0.0)
    status = "loss 0.4162  PSNR 28.78  40000 gs  5.1 it/s  and a long status that runs past eighty columns"
    with log.progress() as p:
        assert isinstance(p, log.PlainProgress)
        task = p.add_task("training", total=100, status="")
        for i in range(4):
            p.update(task, advance=25, status=status)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 4 and "━" not in buf.getvalue() and "…" not in buf.getvalue()
    assert lines[0].startswith("training 25/100 (25%) loss 0.4162") and "s elapsed" in lines[0]
    assert lines[-1].startswith("training 100/100 (100%)") and "eighty columns" in lines[-1]
    assert lines[-1].endswith("s elapsed")


def test_a_tasks_own_time_left_and_a_lower_bound(monkeypatch):
    """The trainer gives its own time left (its latest steps' speed) and says when it is a lower bound: the
    average over the run said ~35 s left on the shared clip's CPU training with 160 s to go, as each step gets
    slower while the Gaussians grow."""
    buf = io.StringIO()
    monkeypatch.setattr(log, "console", Console(file=buf, width=80, force_terminal=False, highlight=False))
    monkeypatch.setattr(log, "PLAIN_PROGRESS_INTERVAL", 0.0)
    with log.progress() as p:
        task = p.add_task("training", total=100, status="")
        p.update(task, advance=25, left=160.4, at_least=True)
        p.update(task, advance=25, left=42.0, at_least=False)
        p.update(task, advance=50)
    lines = buf.getvalue().splitlines()
    assert lines[0].endswith("s elapsed, ~160 s left or more (the Gaussians are still growing)"), lines[0]
    assert lines[1].endswith("s elapsed, ~42 s left"), lines[1]
    assert lines[2].endswith("s elapsed")
    # the terminal's column: the same figure, "+" for at least
    with log.Progress(log.TimeLeftColumn(), console=Console(file=io.StringIO()), disable=True) as bar:
        t = bar.add_task("training", total=100, left=3725.0, at_least=True)
        bar.update(t, advance=10)
        assert str(bar.columns[0].render(bar._tasks[t])) == "1:02:05+"
        bar.update(t, at_least=False)
        assert str(bar.columns[0].render(bar._tasks[t])) == "1:02:05"


def test_trainer_time_left_comes_from_its_latest_steps(monkeypatch):
    """The training's line carries the trainer's own estimate, a lower bound while the Gaussians may still grow."""
    import numpy as np

    from sparsevid.data.synthetic import make_scene
    from sparsevid.gaussians.trainer import Trainer, TrainConfig, TrainView

    sc = make_scene(width=48, height=32, keyframes=(0, 9, 19, 29))
    views = [TrainView(image=f.image, K=sc.camera.K, c2w=f.c2w) for f in sc.frames]
    seen = []
    real = log.Progress.update

    def update(self, task, **kw):
        if "left" in kw:
            seen.append((kw["left"], kw["at_least"]))
        return real(self, task, **kw)

    monkeypatch.setattr(log.Progress, "update", update)
    import time

    tr = Trainer(TrainConfig(steps=40, seed=0, log_every=10), views, sc.points[::8], sc.point_colors[::8], "cpu")
    tr.strategy.refine_stop_iter = 25
    t0 = time.perf_counter()
    tr.train(hooks={25: lambda t: time.sleep(2.0)})  # a progressive round's time is not a step's cost
    wall = time.perf_counter() - t0
    assert len(seen) == 4 and seen[0][0] is None  # the first interval holds the warm-up: no estimate from it
    assert all(left >= 0 for left, _ in seen[1:]) and seen[-1][0] == 0
    assert [a for _, a in seen] == [True, True, False, False]
    assert np.isfinite([left for left, _ in seen[1:]]).all()
    assert seen[2][0] < (wall - 2.0) / 2, (seen, wall)  # 10 steps left after step 30: not 10 x (a 2 s round)/10


def test_pose_stage_prints_no_glog_lines(tmp_path):
    """Nor does it leave glog's own log files in the temporary folder (outside the output folder)."""
    out = tmp_path / "poses"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    r = subprocess.run([sys.executable, "-m", "sparsevid", "poses", str(DEMO), "-o", str(out),
                        "--keyframes", "0,9,19,29"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "SPARSEVID_VERBOSE": "", "TMPDIR": str(tmp), "TMP": str(tmp)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in tmp.iterdir()) == []
    assert not GLOG.search(r.stderr), r.stderr[:2000]
    assert "Cholesky" not in r.stderr and "poses: 4/4 frames" in r.stderr
    assert len(r.stderr.strip().splitlines()) < 12
    captured = (out / "colmap.log").read_text()
    assert GLOG.search(captured)  # kept, not lost


def test_run_log_has_no_colmap_lines_without_verbose(tmp_path):
    """A whole `sparsevid run` with the pose stage: no glog line on stderr unless --verbose."""
    from sparsevid.data.synthetic import make_scene
    from sparsevid.video.io import write_frames

    scene = make_scene(width=128, height=96, keyframes=tuple(range(30)))
    src = tmp_path / "frames"
    write_frames([f.image for f in scene.frames], src)
    cmd = [sys.executable, "-m", "sparsevid", "run", str(src), "--keyframes", "0,9,19,29", "--device", "cpu",
           "--steps", "20", "--no-video"]
    quiet = subprocess.run(cmd + ["-o", str(tmp_path / "a")], capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    glog = [ln for ln in quiet.stderr.splitlines() if ln[:1] in "IWE" and ln[1:5].isdigit()]
    assert glog == [] and "Cholesky" not in quiet.stderr
    assert "poses:" in quiet.stderr  # our own pose-stage line is there
    loud = subprocess.run([sys.executable, "-m", "sparsevid", "-v"] + cmd[3:] + ["-o", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=600)
    assert loud.returncode == 0
    assert any(ln[:1] in "IWE" and ln[1:5].isdigit() for ln in loud.stderr.splitlines())


def test_lines_print_brackets_as_they_are(tmp_path, capsys):
    """A message is plain text: an install hint's extras, a path with brackets and a clip's tag are printed as
    they are (rich read them as markup and dropped them), and a warning is recorded as printed."""
    from sparsevid import log
    from sparsevid.cli import main

    hint = "pip install 'sparsevid[view]' (or: pip install viser)"
    with log.tagged("walk[1]"), log.recording_warnings() as seen:
        log.warn(hint)
        log.error("a [bold]path[/bold]")
        log.info("[red]x[/red]", dim=True)
    err = capsys.readouterr().err
    assert f"warning: [walk[1]] {hint}" in err
    assert "error: [walk[1]] a [bold]path[/bold]" in err and "[red]x[/red]" in err
    assert seen == [hint]
    odd = tmp_path / "clip[red]" / "x[bold]y"
    assert main(["inspect", str(odd)]) == 2
    assert f"error: {odd}: input not found" in capsys.readouterr().err


def test_a_library_caller_takes_the_lines_with_its_own_logger(tmp_path, capsys):
    """run_pipeline(cfg, logger=...) sends every line (info, warnings, progress) to the caller's logger and
    nothing to stderr; warnings printed on the fusion's worker threads reach the logger and run.json too; the
    quiet switch of a block (and of a training) does not change the process's."""
    import json
    import logging
    import threading

    import numpy as np

    from sparsevid.data.synthetic import make_scene
    from sparsevid.pipeline import named_config, run_pipeline
    from sparsevid.video.io import write_frames

    scene = make_scene(width=64, height=48, keyframes=tuple(range(30)))
    write_frames([np.ascontiguousarray(f.image) for f in scene.frames], tmp_path / "in")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("sparsevid-test-caller")
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    logger.propagate = False
    cfg = named_config("default", input=tmp_path / "in", output=tmp_path / "out", keyframes=[0, 9, 19, 29],
                       device="cpu")
    cfg.fuse.mode, cfg.fuse.learned, cfg.write_video, cfg.write_report = "2d", "off", False, False
    cfg.fuse.threads = 2
    from sparsevid.fuse import stage

    original = stage.fuse

    def fuse_warning_on_a_worker(*a, **k):  # a warning printed on a worker thread, once
        if threading.current_thread() is not threading.main_thread() and not any(
                "worker line" in r.getMessage() for r in records):
            log.warn("worker line")
        return original(*a, **k)

    stage.fuse = fuse_warning_on_a_worker
    try:
        run_pipeline(cfg, logger=logger)
    finally:
        stage.fuse = original
    err = capsys.readouterr().err
    assert err == "", err
    text = [r.getMessage() for r in records]
    assert any(r.levelno == logging.WARNING and r.getMessage() == "worker line" for r in records), text
    assert any(t.startswith("fusing 30/30") for t in text), text  # progress as plain lines
    assert any(r.levelno == logging.INFO for r in records)
    assert "worker line" in json.loads((tmp_path / "out" / "run.json").read_text())["warnings"]
    with log.quieted():
        assert log.is_quiet()
    assert not log.is_quiet()
