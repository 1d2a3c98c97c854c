"""``sparsevid batch``: three tiny synthetic clips plus one corrupt clip on a local 2-CPU Ray
cluster and with ``--engine local``; a re-run does no work for finished clips; a worker killed
(SIGKILL) mid-training is retried by Ray, resumes from its checkpoint, and gives bit-identical
frames. The Ray tests are skipped where Ray is not installed (``pip install -e '.[dev]'`` has it)."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from sparsevid.cli import main
from sparsevid.data.nerfstudio import write_transforms
from sparsevid.data.synthetic import make_scene

CLIPS = ["a", "b", "c"]
FLOW = ["--config-name", "flow_only", "--keyframes", "0,9,19,29", "--device", "cpu"]


def _clips(root: Path) -> Path:
    """``root/clips/{a,b,c}``: tiny posed synthetic scenes; ``root/clips/bad``: a corrupt transforms.json."""
    d = root / "clips"
    scene = make_scene(64, 48)
    write_transforms(scene, d / "a" / "transforms.json", write_images=True)
    for n in CLIPS[1:]:
        shutil.copytree(d / "a", d / n)
    (d / "bad").mkdir()
    (d / "bad" / "transforms.json").write_text("{not json")
    return d


def _summary(root: Path) -> dict[str, dict]:
    with open(root / "summary.csv", newline="") as f:
        return {r["clip"]: r for r in csv.DictReader(f)}


def _check_outputs(out: Path) -> None:
    rows = _summary(out)
    assert sorted(rows) == sorted(CLIPS + ["bad"])
    for n in CLIPS:
        r = rows[n]
        assert r["status"] == "done" and r["error"] == "" and r["frames"] == "30" and r["device"] == "cpu", r
        assert float(r["seconds_total"]) > 0 and float(r["seconds_fusing"]) >= 0
        assert float(r["quality_psnr_heldout"]) > 10 and float(r["metrics_heldout_psnr"]) > 10
        assert r["report"] == f"{n}/report.html"
        assert (out / n / "video.mp4").is_file() and len(list((out / n / "frames").glob("*.png"))) == 30
        assert json.loads((out / n / "run.json").read_text())["status"] == "done"
    bad = rows["bad"]
    assert bad["status"] == "failed" and "\n" not in bad["error"]
    assert "transforms.json" in bad["error"] and "JSON" in bad["error"] and bad["frames"] == ""
    js = json.loads((out / "summary.json").read_text())
    assert js["counts"] == {"done": 3, "failed": 1}
    page = (out / "summary.html").read_text()
    assert all(f'href="{n}/report.html"' in page for n in CLIPS)


# ---- Ray -------------------------------------------------------------------------------------
def _fault_hook(plan_dir: str):
    """A Ray worker setup hook: a worker training the clip ``NAME`` kills itself with SIGKILL after
    the step in ``plan_dir/NAME.kill_at``, once (``NAME.killed`` marks the first attempt)."""

    def hook():
        import os
        import signal
        from pathlib import Path

        from sparsevid.gaussians import trainer as tr

        original = tr.Trainer.train_step

        def train_step(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            if self.run_dir is not None:
                clip = Path(self.run_dir).parent.name
                plan, killed = Path(plan_dir) / f"{clip}.kill_at", Path(plan_dir) / f"{clip}.killed"
                if plan.is_file() and not killed.exists() and self.step >= int(plan.read_text()):
                    killed.write_text(str(os.getpid()))
                    os.kill(os.getpid(), signal.SIGKILL)
            return result

        tr.Trainer.train_step = train_step

    return hook


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray cluster with 2 CPUs (``sparsevid batch`` uses the running session), with the
    fault hook in every worker."""
    ray = pytest.importorskip("ray")
    plan_dir = tmp_path_factory.mktemp("faults")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"worker_process_setup_hook": _fault_hook(str(plan_dir))})
    yield plan_dir
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_batch(ray_cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("raybatch")
    clips = _clips(root)
    out = root / "out"
    rc = main(["batch", str(clips / "*"), "-o", str(out), "--engine", "ray", *FLOW])
    return clips, out, rc


def test_ray_batch_three_clips_and_a_corrupt_one(ray_batch):
    clips, out, rc = ray_batch
    assert rc == 1  # a clip failed
    _check_outputs(out)


def test_rerun_does_no_work_for_finished_clips(ray_batch):
    clips, out, _ = ray_batch
    before = {p: p.stat().st_mtime_ns for n in CLIPS for p in [out / n, *(out / n).rglob("*")]}
    rc = main(["batch", str(clips / "*"), "-o", str(out), "--engine", "ray", *FLOW])
    assert rc == 1
    rows = _summary(out)
    assert [rows[n]["status"] for n in CLIPS] == ["skipped"] * 3 and rows["bad"]["status"] == "failed"
    assert rows["a"]["frames"] == "30" and float(rows["a"]["quality_psnr_heldout"]) > 10  # read back
    after = {p: p.stat().st_mtime_ns for n in CLIPS for p in [out / n, *(out / n).rglob("*")]}
    assert after == before


def test_killed_worker_is_retried_and_resumes_bit_identically(ray_cluster, tmp_path):
    from sparsevid.pipeline import named_config, write_run_config

    plan_dir = ray_cluster
    src = tmp_path / "src"
    write_transforms(make_scene(64, 48), src / "clean" / "transforms.json", write_images=True)
    shutil.copytree(src / "clean", src / "fault")
    cfg = named_config("default", keyframes=[0, 9, 19, 29], device="cpu", steps=40)
    cfg.train.checkpoint_every = 5
    conf = write_run_config(cfg, tmp_path / "conf")
    (plan_dir / "fault.kill_at").write_text("23")  # killed after step 23: resumes from step 20
    out = tmp_path / "out"
    rc = main(["batch", str(src / "clean"), str(src / "fault"), "-o", str(out), "--engine", "ray",
               "--config", str(conf), "--cpus-per-clip", "1", "--max-retries", "2"])
    assert rc == 0
    assert (plan_dir / "fault.killed").is_file()  # the first attempt did die
    rows = _summary(out)
    assert rows["fault"]["status"] == "done" and rows["fault"]["resumed"] == "True"
    assert rows["clean"]["status"] == "done" and rows["clean"]["resumed"] == "False"
    segments = json.loads((out / "fault" / "run.json").read_text())["segments"]
    assert len(segments) == 1  # a hard kill leaves no segment record; the retry resumed the checkpoint
    clean = sorted((out / "clean" / "frames").glob("*.png"))
    fault = sorted((out / "fault" / "frames").glob("*.png"))
    assert len(clean) == len(fault) == 30
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(clean, fault))


# ---- local engine (no Ray) -----------------------------------------------------------------------
def test_local_engine_three_clips_and_a_corrupt_one(tmp_path):
    clips = _clips(tmp_path)
    out = tmp_path / "out"
    assert main(["batch", str(clips / "*"), "-o", str(out), "--engine", "local", *FLOW]) == 1
    _check_outputs(out)


def test_ray_batch_that_no_node_can_run_is_refused_at_once(ray_cluster, tmp_path, capsys):
    """--gpus-per-clip 1 on a cluster without GPUs: Ray would wait for ever ("No available node types can fulfill
    resource request"); the batch says so in one line before any output."""
    clips = _clips(tmp_path)
    rc = main(["batch", str(clips / "*"), "-o", str(tmp_path / "out"), "--engine", "ray", "--gpus-per-clip", "1",
               *FLOW])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "a clip asks for 1 CPUs and 1 GPUs" in err and "0 GPUs: no clip could ever start" in err
    assert "--gpus-per-clip" in err and not (tmp_path / "out").exists()


def test_ray_batch_with_an_unreachable_head_is_refused_at_once(tmp_path, capsys, monkeypatch):
    """ray.init retries a head that is not there for many minutes; the batch tries a TCP connection first. Ray's
    de-duplication of similar lines (which hid clips' warnings) is turned off before Ray is imported."""
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_DEDUP_LOGS", raising=False)
    clips = _clips(tmp_path)
    rc = main(["batch", str(clips / "*"), "-o", str(tmp_path / "out"), "--engine", "ray", "--address",
               "127.0.0.1:1", *FLOW])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "cannot reach the Ray head at 127.0.0.1:1" in err and not (tmp_path / "out").exists()
    import os

    assert os.environ["RAY_DEDUP_LOGS"] == "0"


def test_a_batch_on_some_clips_keeps_the_others_in_the_summary(tmp_path):
    """Re-running `batch` on one clip of an OUTROOT used to leave a summary of that clip alone; two batches on one
    OUTROOT at once replaced each other's finished rows with "another process is writing"."""
    import json

    from sparsevid.batch.summary import merged_rows, summary_html
    from sparsevid.outdir import BUSY

    clips = _clips(tmp_path)
    out = tmp_path / "out"
    main(["batch", str(clips / "*"), "-o", str(out), "--engine", "local", *FLOW])
    assert main(["batch", str(clips / "a"), "-o", str(out), "--engine", "local", *FLOW]) == 0
    rows = {r["clip"]: r for r in json.loads((out / "summary.json").read_text())["clips"]}
    assert rows["a"]["status"] == "skipped" and rows["b"]["status"] == "done" and rows["bad"]["status"] == "failed"
    assert set(rows) == {"a", "bad", *CLIPS[1:]}
    csv_clips = [ln.split(",")[0] for ln in (out / "summary.csv").read_text().splitlines()[1:]]
    assert sorted(csv_clips) == sorted(rows)
    busy = dict(rows["b"], status="failed", error=f"{out / 'b'}: {BUSY} -> wait for it to finish")
    assert merged_rows(out, [busy])[0]["status"] == "done"  # the other process's row stands
    assert 'href="walk%20%232/report.html"' in summary_html([dict(rows["a"], clip="walk #2",
                                                                   report="walk #2/report.html")])


def test_engine_ray_without_ray_says_how_to_install(tmp_path, monkeypatch, capsys):
    import sparsevid.batch.engines as engines

    monkeypatch.setattr(engines, "ray_available", lambda: False)
    clips = tmp_path / "c"
    clips.mkdir()
    assert main(["batch", str(clips), "-o", str(tmp_path / "out"), "--engine", "ray"]) == 2
    err = capsys.readouterr().err
    assert "pip install -e '.[batch]'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # no work before the check


def test_batch_takes_every_run_flag(tmp_path):
    """Every setting of `run` is a `batch` flag too (derived the same way), passed on to every clip's config;
    the per-clip output and --resume/--overwrite are not."""
    from sparsevid.cli import build_parser
    from sparsevid.cli.batch import batch_config, batch_flags
    from sparsevid.cli.flags import leaf_fields
    from sparsevid.pipeline import RunConfig

    paths = {fl.path for fl in batch_flags()}
    assert paths == {p for p, *_ in leaf_fields(RunConfig)} - {"input", "output", "resume", "overwrite"}
    args = build_parser().parse_args(
        ["batch", str(tmp_path / "clip"), "-o", str(tmp_path / "out"), "--config-name", "flow_only",
         "--keyframes", "0,9,19,29", "--device", "cpu", "--steps", "7", "--fuse.band-sigma", "3.5", "--no-video",
         "--fuse.no-guided", "--path.fps", "30000/1001"])
    cfg = batch_config(args)
    assert cfg.keyframes == [0, 9, 19, 29] and cfg.device == "cpu" and cfg.train.steps == 7
    assert cfg.fuse.band_sigma == 3.5 and cfg.write_video is False and cfg.fuse.guided is False
    assert cfg.fuse.mode == "2d"  # from the named configuration
    from fractions import Fraction
    assert cfg.path.fps == Fraction(30000, 1001)


# ---- clips from a glob, and each clip's warnings -------------------------------------------------
def test_a_glob_leaves_out_files_that_are_not_clips(tmp_path, capsys):
    """`batch 'clips/*'` used to take notes.txt for a clip and count it as failed."""
    from sparsevid.batch.jobs import expand_inputs
    from sparsevid.errors import SparsevidError

    clips = tmp_path / "clips"
    (clips / "walk").mkdir(parents=True)
    (clips / "drone.MP4").write_bytes(b"")
    (clips / "notes.txt").write_text("x")
    (clips / ".DS_Store").write_bytes(b"")
    got = expand_inputs([str(clips / "*")], tmp_path / "out")
    assert [n for n, _ in got] == ["drone", "walk"]
    assert "left out 1 file that is not a clip (notes.txt)" in capsys.readouterr().err
    # a named file is still tried (the pipeline says what is wrong with it)
    assert [n for n, _ in expand_inputs([str(clips / "notes.txt")], tmp_path / "out")] == ["notes"]
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        (frames / f"{i:03d}.png").write_bytes(b"")
    with pytest.raises(SparsevidError) as e:  # frames given one by one: say to give their folder
        expand_inputs([str(frames / "*")], tmp_path / "out")
    assert "matches no clip" in e.value.one_line() and "folder that holds a clip's frames" in e.value.one_line()


def test_a_clips_warnings_name_it_and_go_into_its_row(tmp_path, monkeypatch, capsys):
    """With many clips at once, a warning line says which clip it is about, and the summary keeps it."""
    import sparsevid.pipeline as pipeline
    from sparsevid import log
    from sparsevid.batch.jobs import make_specs, run_clip
    from sparsevid.batch.summary import write_summary
    from sparsevid.errors import SparsevidError

    def fake(cfg, model=None):
        log.warn("the camera barely moves; check the clip")
        raise SparsevidError("no frames")
    monkeypatch.setattr(pipeline, "run_pipeline", fake)
    (tmp_path / "walk").mkdir()
    spec = make_specs([tmp_path / "walk"], tmp_path / "out", pipeline.RunConfig())[0]
    row = run_clip(spec)
    err = capsys.readouterr().err
    assert "warning: [walk] the camera barely moves; check the clip" in err
    assert row["status"] == "failed" and row["warnings"] == ["the camera barely moves; check the clip"]
    log.warn("outside")  # no clip: no tag, and nothing recorded
    assert "warning: outside" in capsys.readouterr().err and row["warnings"] == [
        "the camera barely moves; check the clip"]
    (tmp_path / "out").mkdir()
    write_summary(tmp_path / "out", [row])
    assert _summary(tmp_path / "out")["walk"]["warnings"] == "the camera barely moves; check the clip"
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["clips"][0]["warnings"] == [
        "the camera barely moves; check the clip"]
    assert "1 with warnings" in (tmp_path / "out" / "summary.html").read_text()


def test_changed_settings_are_not_taken_for_finished_and_overwrite_redoes_only_those(tmp_path, capsys):
    """A rerun with other settings does not report the old results as done: such a clip is kept as it is, naming
    the difference, with the numbers of the run it holds (it was marked failed and its numbers dropped from the
    summary); --overwrite redoes it; a rerun of that same command then skips it. A clip whose run was stopped
    while its report was written ("reporting") is not finished."""
    import json

    from sparsevid.batch.jobs import clip_state

    clips = tmp_path / "clips"
    write_transforms(make_scene(64, 48), clips / "a" / "transforms.json", write_images=True)
    out = tmp_path / "out"
    batch = ["batch", str(clips / "a"), "-o", str(out), "--engine", "local", *FLOW]
    assert main(batch) == 0
    capsys.readouterr()
    done = _summary(out)["a"]
    assert main(batch + ["--video.crf", "20"]) == 1
    err = capsys.readouterr().err
    row = _summary(out)["a"]
    assert row["status"] == "kept" and "video.crf: 12 -> 20" in row["error"] and "--overwrite" in row["error"]
    assert row["frames"] == done["frames"] == "30" and row["quality_psnr_heldout"] == done["quality_psnr_heldout"] != ""
    assert "video.crf: 12 -> 20" in err and "0 failed, 1 kept with other settings (--overwrite redoes them)" in err
    assert json.loads((out / "summary.json").read_text())["counts"] == {"kept": 1}
    assert "<tr class=\"kept\">" in (out / "summary.html").read_text()
    assert main(batch + ["--video.crf", "20", "--overwrite"]) == 0
    assert _summary(out)["a"]["status"] == "done"
    assert json.loads((out / "a" / "run.json").read_text())["config"]["video"]["crf"] == 20
    assert main(batch + ["--video.crf", "20", "--overwrite"]) == 0
    assert _summary(out)["a"]["status"] == "skipped"
    # the input changed (a frame added): not finished either
    (clips / "a" / "images" / "extra.png").write_bytes((clips / "a" / "images" / "frame_0000.png").read_bytes())
    assert main(batch + ["--video.crf", "20"]) == 1
    assert "input files differ" in _summary(out)["a"]["error"]
    info = json.loads((out / "a" / "run.json").read_text())
    (out / "a" / "run.json").write_text(json.dumps({**info, "status": "reporting"}))
    assert clip_state(out / "a") == "partial"
    # a half-finished run with other settings has no finished results to keep: failed, as before
    assert main(batch + ["--video.crf", "21"]) == 1
    row = _summary(out)["a"]
    assert row["status"] == "failed" and "unfinished earlier run" in row["error"] and "--overwrite" in row["error"]


def test_ray_init_leaves_the_batchs_sigterm_handler_in_place(monkeypatch):
    """ray.init replaces the SIGTERM handler with its own (sys.exit): a SIGTERM then ended a Ray batch with exit 15,
    Ray's native stack lines, no "interrupted" line and a summary of "pending" rows for finished clips."""
    import signal

    ray = pytest.importorskip("ray")
    from sparsevid.batch.engines import init_ray

    def ours(signum, frame):
        raise KeyboardInterrupt

    def rays_init(**kwargs):
        signal.signal(signal.SIGTERM, lambda s, f: None)  # what ray.init does to the handler

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", rays_init)
    before = signal.signal(signal.SIGTERM, ours)
    try:
        assert init_ray(None) is True
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        signal.signal(signal.SIGTERM, before)


def test_another_clip_of_the_same_name_and_file_sizes_is_not_taken_for_the_finished_one(tmp_path):
    """Two clips named `cam` in two folders, their frames of one size (uncompressed frames always are): a batch
    on the second skipped it and reported the first clip's results as its own. The bytes now decide when the
    input is another folder than the run's; a clip moved elsewhere still counts as the same."""
    import shutil

    import yaml

    from sparsevid.fingerprint import FINGERPRINT_NAME, earlier_run_differences, files_fingerprint

    a, b, out = tmp_path / "c" / "cam", tmp_path / "d" / "cam", tmp_path / "out"
    for folder, byte in ((a, b"\x01"), (b, b"\x02")):
        folder.mkdir(parents=True)
        for i in range(3):
            (folder / f"frame_{i:04d}.bmp").write_bytes(byte * 64)
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump({"input": str(a), "seed": 0}))
    (out / FINGERPRINT_NAME).write_text(json.dumps({"config": {"seed": 0}, "inputs": {"input": files_fingerprint(a)}}))
    assert earlier_run_differences(out, {"input": str(a), "seed": 0}, a) == []
    assert earlier_run_differences(out, {"input": str(b), "seed": 0}, b) == [
        "input files differ (another folder, files of the same names and sizes)"]
    moved = tmp_path / "e" / "cam"
    shutil.copytree(a, moved)
    assert earlier_run_differences(out, {"input": str(moved), "seed": 0}, moved) == []


def test_a_clip_another_batch_is_running_is_not_counted_as_failed():
    """Two batches on one OUTROOT each reported the other's clips as failed and exited 1, though every clip ran
    once."""
    from sparsevid.batch.summary import counts, elsewhere
    from sparsevid.outdir import BUSY

    busy = {"clip": "a", "status": "failed", "error": f"/o/a: {BUSY} -> wait for it to finish"}
    bad = {"clip": "b", "status": "failed", "error": "keyframes 50 not in the input"}
    assert elsewhere(busy) and not elsewhere(bad)
    assert counts([busy, bad, {"clip": "c", "status": "done"}]) == {"elsewhere": 1, "failed": 1, "done": 1}


def _fake_run(root: Path, name: str, input_path: Path, in_run_json: bool = True) -> None:
    """``root/name``: a run folder (the marker) whose run recorded ``input_path`` in run.json or config.yaml."""
    import yaml

    from sparsevid.pipeline import MARKER

    d = root / name
    d.mkdir(parents=True)
    (d / MARKER).write_text("")
    if in_run_json:
        (d / "run.json").write_text(json.dumps({"config": {"input": str(input_path)}, "status": "done"}))
    else:
        (d / "config.yaml").write_text(yaml.safe_dump({"input": str(input_path)}))


def test_a_clip_keeps_its_folder_whatever_else_the_batch_holds(tmp_path):
    """A clip's folder depended on the other clips of the batch (a parent prefix only on a clash): `walk` alone went
    to OUTROOT/walk, and a later batch with another `walk` ran it again as OUTROOT/day1-walk. A clip now keeps the
    folder an earlier run recorded for it; a new clip never takes a folder whose input still exists elsewhere."""
    from sparsevid.batch.jobs import clip_names

    out = tmp_path / "out"
    day1, day2, day3 = (tmp_path / d / "walk.mp4" for d in ("day1", "day2", "day3"))
    for p in (day1, day2, day3):
        p.parent.mkdir()
        p.write_bytes(b"x")
    out.mkdir()
    assert clip_names([day1], out) == ["walk"]
    assert clip_names([day1, day2], out) == ["day1-walk", "day2-walk"]  # nothing recorded yet: both prefixed
    _fake_run(out, "walk", day1)
    assert clip_names([day1, day2], out) == ["walk", "day2-walk"]
    assert clip_names([day2, day1], out) == ["day2-walk", "walk"]
    _fake_run(out, "day2-walk", day2, in_run_json=False)  # a run stopped before run.json: config.yaml names it
    assert clip_names([day2], out) == ["day2-walk"]
    assert clip_names([day3], out) == ["day3-walk"]  # `walk` is day1's, which still exists
    # two earlier folders for one clip (batches before this rule): the clip's own name first
    _fake_run(out, "day1-walk", day1)
    assert clip_names([day1, day3], out) == ["walk", "day3-walk"]
    # a clip moved away from where its run recorded it: the folder may be taken, its files decide (changes())
    moved = tmp_path / "moved" / "walk.mp4"
    moved.parent.mkdir()
    day1.rename(moved)
    assert clip_names([moved], out) == ["walk"]
    # the same parent name twice: numbered
    a, b = tmp_path / "p" / "cam" / "walk", tmp_path / "q" / "cam" / "walk"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    assert clip_names([a, b], tmp_path / "empty") == ["cam-walk", "cam-walk-2"]


def test_a_second_batch_over_more_clips_skips_the_finished_one(tmp_path):
    """End to end with --engine local: a batch on day1/walk, then one on day1/walk and day2/walk: the first is
    skipped in its folder, the second runs into day2-walk; neither runs twice."""
    scene = make_scene(64, 48)
    day1, day2 = tmp_path / "day1" / "walk", tmp_path / "day2" / "walk"
    write_transforms(scene, day1 / "transforms.json", write_images=True)
    shutil.copytree(day1, day2)
    out = tmp_path / "out"
    assert main(["batch", str(day1), "-o", str(out), "--engine", "local", *FLOW]) == 0
    assert sorted(_summary(out)) == ["walk"]
    first = (out / "walk" / "run.json").read_bytes()
    assert main(["batch", str(day1), str(day2), "-o", str(out), "--engine", "local", *FLOW]) == 0
    rows = _summary(out)
    assert sorted(rows) == ["day2-walk", "walk"]
    assert rows["walk"]["status"] == "skipped" and rows["day2-walk"]["status"] == "done", rows
    assert (out / "walk" / "run.json").read_bytes() == first
    assert not (out / "day1-walk").exists()


def test_two_videos_of_one_name_in_one_folder_both_run(tmp_path):
    """`odd.mov` beside `odd.MP4`: the batch refused to start ("two clips would write to the same folder"); now
    the second is told apart by its extension."""
    from sparsevid.batch.jobs import expand_inputs

    clips = tmp_path / "clips"
    clips.mkdir()
    for n in ("odd.mov", "odd.MP4", "walk.mp4"):
        (clips / n).write_bytes(b"x")
    got = dict(expand_inputs([str(clips / "*")], tmp_path / "out"))
    assert sorted(got) == ["clips-odd", "clips-odd-mov", "walk"]
    assert got["clips-odd"].name == "odd.MP4" and got["clips-odd-mov"].name == "odd.mov"
