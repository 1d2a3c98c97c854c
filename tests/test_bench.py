"""The benchmark harness (benchmarks/run.py) on a tiny synthetic case: JSON, markdown block, comparison image."""
from __future__ import annotations

import importlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sparsevid.data.images import read_image, write_image
from sparsevid.data.synthetic import make_scene

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
bench = importlib.import_module("benchmarks.run")

KEYS = (0, 9, 19, 29)


def _has_pipeline() -> bool:
    return bench.pipeline_available()[0]


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 frames of the synthetic corridor (64x48) + reference_transforms.json of all 30 poses."""
    root = tmp_path_factory.mktemp("cases") / "synthetic_corridor"
    scene = make_scene(width=64, height=48, keyframes=KEYS)
    frames = sorted(scene.frames + scene.gt_frames, key=lambda f: f.index)
    for f in frames:
        write_image(root / f"frame_{f.index:04d}.png", f.image)
    try:
        from sparsevid.data.nerfstudio import write_transforms
    except ImportError:
        return root
    posed = [replace(f, path=root / f"frame_{f.index:04d}.png") for f in frames]
    write_transforms(replace(scene, frames=posed, gt_frames=[]), root / "reference_transforms.json")
    return root


def _config(case_dir: Path, tmp: Path, **kw) -> "bench.BenchConfig":
    base = dict(cases=[case_dir], device="cpu", configs=[], out=tmp / "results", runs_dir=tmp / "runs",
                update_md=tmp / "BENCHMARKS.md", machine="testbox", command="pytest")
    base.update(kw)
    return bench.BenchConfig(**base)


def _sane(m: dict) -> None:
    assert 10 < m["psnr_heldout"] < 60, m
    assert 0 < m["ssim_heldout"] <= 1, m
    assert 0 < m["sharpness_heldout_min"] <= m["sharpness_heldout"] < 2, m
    assert 0 < m["pulse_ratio"] < 2 and 0.5 < m["pulse_ratio_real"] < 2, m
    assert m["psnr_heldout_min"] <= m["psnr_heldout"] + 1e-9, m
    pin = m["psnr_inputs"]  # peers copy the inputs: perfect (inf -> null in JSON) or capped
    assert pin is None or pin > 40, m


def test_peers_json_markdown_and_image(case_dir: Path, tmp_path: Path) -> None:
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\nkept text\n\n<!-- bench:begin other -->\nother machine\n<!-- bench:end other -->\n")
    report = bench.run_bench(_config(case_dir, tmp_path))

    data = json.loads(Path(report["json_path"]).read_text())
    assert data["machine"]["label"] == "testbox" and data["machine"]["cpu_cores"] >= 1
    assert data["machine"]["torch"] and data["date"] and data["command"] == "pytest"
    runs = {r["method"]: r for r in data["runs"]}
    assert set(runs) == {"nearest", "crossfade", "dis_flow"}
    for r in runs.values():
        assert r["status"] == "ok" and r["resolution"] == [64, 48] and r["case"] == "synthetic_corridor"
        _sane(r["metrics"])
        assert r["total_seconds"] >= 0 and r["peak_memory"]["cpu_rss_mb"] > 0
        assert "flicker" in r["metrics"]
    # peers reproduce the inputs; motion-compensated interpolation beats holding the nearest frame
    assert runs["dis_flow"]["metrics"]["psnr_heldout"] > runs["nearest"]["metrics"]["psnr_heldout"]
    # holding the inputs keeps their sharpness; blending two frames blurs the in-between ones (the video pulses)
    near, fade = runs["nearest"]["metrics"], runs["crossfade"]["metrics"]
    assert near["pulse_ratio"] == pytest.approx(1.0, abs=0.15) and fade["pulse_ratio"] < near["pulse_ratio"] - 0.1
    assert fade["sharpness_heldout"] < near["sharpness_heldout"]
    assert near["pulse_ratio_real"] == fade["pulse_ratio_real"]  # a property of the real clip

    text = md.read_text()
    assert text.count("<!-- bench:begin testbox -->") == 1 and text.count("<!-- bench:end testbox -->") == 1
    assert "kept text" in text and "other machine" in text
    assert "| synthetic_corridor | dis_flow | 64×48 |" in text and "pytest" in text
    assert "estimated PSNR dB" in text and "| pulse ratio |" in text and "sharpness (1 = real)" in text
    assert "Estimate vs truth" not in text  # peers make no quality estimate
    header = next(line for line in text.splitlines() if line.startswith("| case | method |"))
    row = next(line for line in text.splitlines() if line.startswith("| synthetic_corridor | dis_flow |"))
    assert row.count("|") == header.count("|")

    img_path = tmp_path / "results" / "synthetic_corridor-testbox-compare.png"
    img = read_image(img_path)
    assert img.shape[1] == 3 * 64  # GT | DIS flow | its error map (no sparsevid run)
    assert img.shape[0] > 3 * 48 and img.std() > 5

    # a re-run replaces the block (once, same place) and keeps the rest of the file
    report2 = bench.run_bench(_config(case_dir, tmp_path, command="pytest again"))
    text2 = md.read_text()
    assert text2.count("<!-- bench:begin testbox -->") == 1 and "pytest again" in text2
    assert text2.index("other machine") < text2.index("bench:begin testbox")
    data2 = json.loads(Path(report2["json_path"]).read_text())
    assert len(data2["runs"]) == 3  # re-runs replace, not duplicate


def test_scaled_case_scales_frames_and_intrinsics(case_dir: Path, tmp_path: Path) -> None:
    case = bench.load_case(case_dir, 0.5, tmp_path, KEYS)
    assert case.size == (32, 24) and len(case.frames) == 30
    assert case.root != case_dir and (case.root / "frame_0029.png").is_file()
    if (case_dir / "reference_transforms.json").is_file():
        src = json.loads((case_dir / "reference_transforms.json").read_text())
        dst = json.loads(case.reference_transforms.read_text())
        assert dst["w"] == 32 and dst["h"] == 24
        assert dst["fl_x"] == pytest.approx(src["fl_x"] / 2) and dst["cy"] == pytest.approx(src["cy"] / 2)


def test_scaled_runs_take_full_resolution_poses_rescaled(case_dir: Path, tmp_path: Path) -> None:
    """At --scale != 1 the sparsevid runs get the full-size poses (here from --poses-dir), rescaled."""
    from sparsevid.data.load import load_scene
    from sparsevid.poses.sfm import save_pose_outputs

    if not (case_dir / "reference_transforms.json").is_file():
        pytest.skip("the synthetic case has no reference poses")
    full = load_scene(case_dir / "reference_transforms.json", keyframes=list(KEYS))
    full.gt_frames = []
    save_pose_outputs(full, {"test": True}, tmp_path / "poses" / case_dir.name)
    cfg = _config(case_dir, tmp_path, configs=["default"], scale=0.5, poses_dir=tmp_path / "poses")
    case = bench.load_case(case_dir, 0.5, tmp_path / "cases", KEYS)
    path, seconds = bench.case_poses(case, cfg, tmp_path / "runs")
    assert seconds is None  # given, not estimated
    scaled = load_scene(path)
    assert (scaled.camera.width, scaled.camera.height) == (32, 24)
    assert scaled.camera.fx == pytest.approx(full.camera.fx / 2)
    assert [f.index for f in scaled.frames] == list(KEYS) and scaled.frames[0].image.shape == (24, 32, 3)
    np.testing.assert_allclose(scaled.c2ws(), full.c2ws(), atol=1e-6)
    # at scale 1 the runs use --poses-dir as it is
    cfg1 = _config(case_dir, tmp_path, configs=["default"], poses_dir=tmp_path / "poses")
    case1 = bench.load_case(case_dir, 1.0, tmp_path / "cases", KEYS)
    assert bench.case_poses(case1, cfg1, tmp_path / "runs") == (tmp_path / "poses" / case_dir.name / "transforms.json",
                                                                None)


def test_update_markdown_creates_and_is_idempotent(tmp_path: Path) -> None:
    md = tmp_path / "sub" / "B.md"
    bench.update_markdown(md, "m1", "first body")
    bench.update_markdown(md, "m2", "second body")
    once = md.read_text()
    bench.update_markdown(md, "m1", "first body")
    assert md.read_text() == once
    bench.update_markdown(md, "m1", "new body")
    text = md.read_text()
    assert "first body" not in text and "new body" in text and "second body" in text
    assert text.index("new body") < text.index("second body")


def test_error_map_and_comparison_shapes() -> None:
    gt = [np.full((20, 30, 3), 100, np.uint8) for _ in range(30)]
    pred = [g.copy() for g in gt]
    pred[4][:10] = 200
    em = bench.error_map(pred[4], gt[4])
    assert em.shape == (20, 30, 3) and em[:10].mean() > em[10:].mean()
    img = bench.comparison_image(gt, [("a", pred), ("b", gt)], [4, 14])
    assert img.shape[1] == 5 * 30 and img.shape[0] > 2 * 20
    assert bench.pick_compare_frames(30, KEYS, (4, 14, 24)) == [4, 14, 24]
    assert bench.pick_compare_frames(10, (0, 9), (4, 14, 24)) == [4]


def test_cli_wrapper_runs_peers(case_dir: Path, tmp_path: Path) -> None:
    from sparsevid.cli import main

    rc = main(["bench", str(case_dir), "--configs", "none", "--device", "cpu", "--scale", "0.5",
               "--out", str(tmp_path / "r"), "--update-md", str(tmp_path / "B.md"), "--machine", "clibox"])
    assert rc == 0
    (js,) = (tmp_path / "r").glob("*-clibox.json")
    data = json.loads(js.read_text())
    assert {r["resolution"][0] for r in data["runs"]} == {32}
    assert "<!-- bench:begin clibox -->" in (tmp_path / "B.md").read_text()


def test_unknown_config_is_a_one_line_error(case_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(bench.SparsevidError, match="unknown --configs"):
        bench.run_bench(_config(case_dir, tmp_path, configs=["warp_drive"]))


FAKE_PIPELINE = """
from dataclasses import dataclass, field
from pathlib import Path

from sparsevid.data.images import read_image
from sparsevid.errors import SparsevidError
from sparsevid.eval.peers import crossfade


@dataclass
class TrainConfig:
    steps: int = 7000


@dataclass
class RunConfig:
    name: str
    input: Path
    output: Path
    keyframes: list
    device: str
    seed: int
    poses_from: Path | None = None
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class RunResult:
    output_dir: Path
    frames: list
    stage_seconds: dict
    metrics: dict
    peak_memory: dict
    quality_estimate: dict | None = None


def named_config(name, input, output, keyframes, device, scale, seed, overwrite, steps=None, poses_from=None,
                 write_video=True):
    cfg = RunConfig(name, Path(input), Path(output), list(keyframes), device, seed, poses_from)
    cfg.write_video = write_video
    if steps is not None:
        cfg.train.steps = steps
    return cfg


def run_pipeline(cfg):
    if cfg.name == "vanilla":
        raise SparsevidError("vanilla exploded", fix="nothing")
    files = sorted(cfg.input.glob("frame_*.png"))
    frames = crossfade({k: read_image(files[k]) for k in cfg.keyframes}, len(files))
    quality = None
    if cfg.name == "default":  # the estimate as a RunResult attribute ...
        quality = {"psnr_heldout": 30.0, "ssim_heldout": 0.9, "route": "fused 2D + 3D"}
    elif cfg.name == "flow_only":  # ... or only in OUT/quality.json
        cfg.output.mkdir(parents=True, exist_ok=True)
        (cfg.output / "quality.json").write_text('{"psnr_heldout": 12.5, "ssim_heldout": 0.5}')
    return RunResult(cfg.output, frames, {"training": 0.5, "rendering": 0.25},
                     {"steps": cfg.train.steps, "poses_from": str(cfg.poses_from), "name": cfg.name},
                     {"cpu_rss_mb": 1.0, "gpu_mb": None}, quality)
"""


@pytest.mark.parametrize("isolate", [True, False])
def test_sparsevid_flow_with_a_stand_in_pipeline(case_dir: Path, tmp_path: Path, isolate: bool,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness side of sparsevid runs (spawned process, frames back, steps override, reference poses,
    a failing config recorded without stopping the others) against a stand-in pipeline returning crossfade."""
    mod_dir = tmp_path / "mods"
    mod_dir.mkdir()
    (mod_dir / "fake_pipeline_for_bench.py").write_text(FAKE_PIPELINE)
    monkeypatch.syspath_prepend(str(mod_dir))
    cfg = _config(case_dir, tmp_path, configs=["default", "route3d", "flow_only", "vanilla", "reference_poses"],
                  steps_override=25, pipeline_module="fake_pipeline_for_bench", isolate=isolate)
    report = bench.run_bench(cfg)
    runs = {r["method"]: r for r in json.loads(Path(report["json_path"]).read_text())["runs"]}
    d = runs["sparsevid:default"]
    assert d["status"] == "ok" and d["pipeline_metrics"]["steps"] == 25 and d["pipeline_metrics"]["name"] == "default"
    assert d["stage_seconds"]["training"] == 0.5 and d["peak_memory"]["cpu_rss_mb"] > 1
    # the frames came back intact: same scores as the crossfade peer
    assert d["metrics"]["psnr_heldout"] == pytest.approx(runs["crossfade"]["metrics"]["psnr_heldout"])
    v = runs["sparsevid:vanilla"]
    assert v["status"] == "error" and "vanilla exploded" in v["error"]
    # the pipeline's quality estimate is recorded beside the true held-out score
    true_psnr = d["metrics"]["psnr_heldout"]
    assert d["quality_estimate"]["psnr_heldout"] == 30.0
    assert d["estimate_vs_truth"]["psnr_error"] == pytest.approx(30.0 - true_psnr)
    f = runs["sparsevid:flow_only"]
    assert f["quality_estimate"] == {"psnr_heldout": 12.5, "ssim_heldout": 0.5}  # read from quality.json
    assert f["estimate_vs_truth"]["ssim_true"] == pytest.approx(f["metrics"]["ssim_heldout"])
    r3 = runs["sparsevid:route3d"]  # the 3D-only configurations make no estimate
    assert r3["quality_estimate"] is None and r3["estimate_vs_truth"] is None
    assert d["metrics"]["pulse_ratio"] == pytest.approx(runs["crossfade"]["metrics"]["pulse_ratio"])
    if (case_dir / "reference_transforms.json").is_file():
        assert runs["sparsevid:reference_poses"]["pipeline_metrics"]["poses_from"].endswith("reference_transforms.json")
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "| sparsevid:vanilla (25 steps) | 64×48 | failed: " in text.replace("synthetic_corridor | ", "")
    assert "Estimate vs truth" in text
    assert f"| synthetic_corridor | sparsevid:default (25 steps) | 64×48 | 30.00 | {true_psnr:.2f} | " in text
    assert "| synthetic_corridor | sparsevid:flow_only (25 steps) | 64×48 | 12.50 |" in text
    assert "| synthetic_corridor | sparsevid:route3d (25 steps) | 64×48 |" not in text.split("Estimate vs truth")[1]
    img = read_image(tmp_path / "results" / "synthetic_corridor-testbox-compare.png")
    assert img.shape[1] == 5 * 64  # GT | sparsevid default | err | DIS flow | err
    assert bench.exit_status(report) == 1  # a failed config (vanilla) is exit 1, as a failed clip in `batch`


def test_bench_checks_its_options_before_any_work(case_dir: Path, tmp_path: Path, capsys) -> None:
    """A missing --poses-dir case became an error in every run (exit 0, naming --poses-from); --steps-override 0
    ran each config's own steps while recording 0."""
    from sparsevid.cli import main

    out = tmp_path / "r"
    assert main(["bench", str(case_dir), "--configs", "flow_only", "--no-peers", "--poses-dir",
                 str(tmp_path / "nope"), "--out", str(out), "--no-update-md"]) == 2
    assert f"--poses-dir has no {case_dir.name}/transforms.json" in capsys.readouterr().err
    assert main(["bench", str(case_dir), "--configs", "default", "--steps-override", "0", "--no-peers", "--out",
                 str(out), "--no-update-md"]) == 2
    assert "--steps-override must be a positive number" in capsys.readouterr().err
    assert not out.exists()


def test_an_interrupted_bench_keeps_the_runs_that_finished(case_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import benchmarks.harness.runner as runner

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_sparsevid", stop)  # Ctrl-C in the first sparsevid run, after the peers
    cfg = _config(case_dir, tmp_path, configs=["flow_only"], update_md=tmp_path / "B.md")
    with pytest.raises(KeyboardInterrupt):
        bench.run_bench(cfg)
    (js,) = (tmp_path / "results").glob("*.json")
    methods = {r["method"] for r in json.loads(js.read_text())["runs"]}
    assert {"dis_flow", "crossfade"} <= methods and not (tmp_path / "B.md").exists()


@pytest.mark.skipif(not _has_pipeline(), reason="sparsevid.pipeline not available yet")
def test_sparsevid_config_tiny(case_dir: Path, tmp_path: Path) -> None:
    # reference poses keep the tiny case independent of pose estimation on 64x48 frames
    config = "reference_poses" if (case_dir / "reference_transforms.json").is_file() else "default"
    report = bench.run_bench(_config(case_dir, tmp_path, configs=[config], steps_override=30))
    data = json.loads(Path(report["json_path"]).read_text())
    runs = {r["method"]: r for r in data["runs"]}
    r = runs[f"sparsevid:{config}"]
    assert r["status"] == "ok", r.get("error")
    assert r["metrics"]["psnr_heldout"] > 8 and 0 < r["metrics"]["ssim_heldout"] <= 1
    assert r["metrics"]["sharpness_heldout"] > 0 and r["metrics"]["pulse_ratio"] > 0
    # the default configuration (fused routes) estimates its held-out quality by leave-one-out
    q = r["quality_estimate"]
    assert q is not None and 8 < q["psnr_heldout"] < 99
    assert r["estimate_vs_truth"]["psnr_true"] == r["metrics"]["psnr_heldout"]
    assert (Path(r["output_dir"]) / "quality.json").is_file()
    assert r["stage_seconds"] and r["peak_memory"]["cpu_rss_mb"] > 0
    img = read_image(tmp_path / "results" / "synthetic_corridor-testbox-compare.png")
    assert img.shape[1] == 5 * 64  # GT | sparsevid | err | DIS flow | err


def test_lpips_is_optional_and_plumbed(case_dir: Path, tmp_path: Path) -> None:
    import torch

    scorer, note = bench.LpipsScorer.load("cpu")
    assert note.startswith("LPIPS") and "\n" not in note
    assert (scorer is None) == note.startswith("LPIPS skipped")
    # the scoring path with a stand-in distance (mean abs difference in [-1, 1] units)
    stand_in = bench.LpipsScorer(lambda a, b: torch.mean(torch.abs(a - b)), "cpu")
    case = bench.load_case(case_dir, 1.0, tmp_path, KEYS)
    pred = [case.frames[min(KEYS, key=lambda k: abs(k - i))] for i in range(30)]
    m = bench.score_frames(pred, case.frames, KEYS, stand_in)
    assert 0 < m["lpips_heldout"] < 1 and m["per_frame"]["4"]["psnr"] < 99


def test_configs_follow_the_pipelines_named_configs() -> None:
    assert {"default", "route3d", "flow_only"} <= set(bench.DEFAULT_CONFIGS)
    assert set(bench.DEFAULT_CONFIGS) <= set(bench.SPARSEVID_CONFIGS)
    # older names stay valid
    old = {"no_fixer", "progressive_only", "enhance_only", "vanilla", "reference_poses"}
    assert old <= set(bench.SPARSEVID_CONFIGS)
    assert bench.parse_configs("all") == list(bench.SPARSEVID_CONFIGS) and bench.parse_configs("none") == []
    if not _has_pipeline():
        pytest.skip("sparsevid.pipeline not available")
    from sparsevid.pipeline import NAMED_CONFIGS

    assert set(bench.SPARSEVID_CONFIGS) - {"reference_poses"} == set(NAMED_CONFIGS)
    assert bench.known_configs() == bench.SPARSEVID_CONFIGS


def test_synthetic_cases_run_through_the_harness(tmp_path: Path) -> None:
    """--cases-synthetic: the robustness cases are generated and scored like any case (peers only here)."""
    import argparse

    args = bench.add_arguments(argparse.ArgumentParser()).parse_args(
        ["--cases-synthetic", "--synthetic-size", "64x48", "--configs", "none", str(tmp_path)])
    cfg = bench.config_from_args(args, [])
    assert cfg.synthetic_cases == ("moving_object", "strong_rotation", "walking_shake", "water", "orbit", "dashcam",
                                   "fast_pan")
    assert cfg.synthetic_size == (64, 48)
    assert bench.parse_synthetic("strong_rotation") == ("strong_rotation",) and bench.parse_synthetic(None) == ()
    with pytest.raises(bench.SparsevidError, match="unknown --cases-synthetic"):
        bench.parse_synthetic("warp_drive")
    with pytest.raises(bench.SparsevidError, match="WxH"):
        bench.parse_size("64by48")

    report = bench.run_bench(bench.BenchConfig(
        cases=[], synthetic_cases=("moving_object", "strong_rotation"), synthetic_size=(64, 48), device="cpu",
        configs=[], out=tmp_path / "results", runs_dir=tmp_path / "runs", update_md=None, machine="testbox",
        command="pytest"))
    runs = json.loads(Path(report["json_path"]).read_text())["runs"]
    assert {(r["case"], r["method"]) for r in runs} == {(c, m) for c in ("moving_object", "strong_rotation")
                                                        for m in bench.PEERS}
    for r in runs:
        assert r["status"] == "ok" and r["resolution"] == [64, 48] and 0 < r["metrics"]["ssim_heldout"] < 1
        assert 8 < r["metrics"]["psnr_heldout"] < 40
    case_dir = tmp_path / "runs" / "synthetic-cases" / "64x48" / "moving_object"
    assert (case_dir / "reference_transforms.json").is_file() and (case_dir / "frame_0029.png").is_file()
