"""Metrics (agreement with the reference scorer), flicker, evaluate(), peers, and `sparsevid eval`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sparsevid.cli import main
from sparsevid.eval import PEERS, crossfade, dis_flow, evaluate, flicker, nearest, psnr, ssim
from sparsevid.eval.metrics import ssim_reference
from sparsevid.video import read_frames, write_frames, write_video
from sparsevid.video.io import write_image

CASE = Path("/work/shared/cases/gopro_sidewalk")
KEYS = [0, 9, 19, 29]


def _moving(n: int = 30, w: int = 128, h: int = 96) -> list[np.ndarray]:
    """A smooth random texture sliding right by 1 px per frame."""
    import cv2

    rng = np.random.default_rng(3)
    noise = rng.normal(size=(h, w + n, 3)).astype(np.float32)
    base = cv2.GaussianBlur(noise, (0, 0), 3.0)
    base = np.clip(128 + base / base.std() * 50, 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(base[:, n - t:n - t + w]) for t in range(n)]


def test_psnr_ssim_match_reference_formulas():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    mse = np.mean((a.astype(float) - b) ** 2)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-12)
    assert psnr(a, a) == 99.0
    assert ssim(a, b) == pytest.approx(ssim_reference(a, b), abs=1e-9)
    f = _moving(2)
    assert ssim(f[0], f[1]) == pytest.approx(ssim_reference(f[0], f[1]), abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)


def test_flicker_definitions():
    gt = _moving(6)
    same = flicker(gt, gt)
    assert same["flicker"] == 0 and same["change_ratio"] == pytest.approx(1.0) and same["pairs"] == 5
    frozen = flicker([gt[0]] * 6, gt)
    assert frozen["change_ratio"] == 0 and frozen["flicker"] == pytest.approx(frozen["gt_change"])
    rng = np.random.default_rng(1)
    noisy = [np.clip(g.astype(int) + rng.integers(-30, 31, g.shape), 0, 255).astype(np.uint8) for g in gt]
    assert flicker(noisy, gt)["change_ratio"] > 1.5
    # only pairs present in both count
    assert flicker(gt, {0: gt[0], 1: gt[1], 3: gt[3]})["pairs"] == 1
    assert flicker(gt, {0: gt[0]})["pairs"] == 0


def test_evaluate_splits_heldout_and_inputs():
    gt = _moving(30)
    pred = [g.copy() for g in gt]
    for i in (3, 4):
        pred[i] = np.clip(pred[i].astype(int) + 10, 0, 255).astype(np.uint8)
    r = evaluate(pred, dict(enumerate(gt)), KEYS)
    assert r["inputs"]["count"] == 4 and r["heldout"]["count"] == 26
    assert r["inputs"]["psnr"] == 99.0 and r["psnr_inputs"] == 99.0
    assert r["heldout"]["psnr_min_frame"] in (3, 4) and r["heldout"]["psnr_min"] < 30
    assert r["per_frame"]["3"]["is_input"] is False and r["per_frame"]["9"]["is_input"] is True
    assert r["psnr_heldout"] == pytest.approx(np.mean([r["per_frame"][str(i)]["psnr"] for i in range(30) if i not in KEYS]))
    json.dumps(r)  # JSON-ready
    # a smaller prediction is resized to the ground truth's size
    small = [g[::2, ::2] for g in gt]
    assert evaluate(small, dict(enumerate(gt)), KEYS)["heldout"]["psnr"] > 15


def test_peers_on_a_moving_pattern():
    gt = _moving(30)
    keys = {k: gt[k] for k in KEYS}
    for name, fn in PEERS.items():
        out = fn(keys, 30)
        assert len(out) == 30 and all(o.shape == gt[0].shape and o.dtype == np.uint8 for o in out)
        assert all(np.array_equal(out[k], gt[k]) for k in KEYS), name
    n = nearest(keys)
    assert np.array_equal(n[4], gt[0]) and np.array_equal(n[5], gt[9]) and np.array_equal(n[14], gt[9])
    c = crossfade(keys)
    expect = (0.5 * gt[9].astype(np.float32) + 0.5 * gt[19].astype(np.float32)).astype(np.uint8)
    assert np.array_equal(c[14], expect)
    # flow follows the 1 px/frame motion: much better than blending
    d = dis_flow(keys)
    held = [i for i in range(30) if i not in KEYS]
    assert np.mean([psnr(d[i], gt[i]) for i in held]) > np.mean([psnr(c[i], gt[i]) for i in held]) + 10  # measured 38 vs 21 dB
    # keys not covering the range: ends repeat the outer keys
    part = nearest({5: gt[5], 10: gt[10]}, 12)
    assert np.array_equal(part[0], gt[5]) and np.array_equal(part[11], gt[10])


@pytest.mark.skipif(not CASE.is_dir(), reason="/work/shared is not available")
def test_peers_reproduce_reference_scorer_on_gopro_sidewalk():
    gt = read_frames(CASE)
    assert len(gt) == 30
    keys = {k: gt[k] for k in KEYS}
    # the reference scorer's published numbers (held-out PSNR dB / SSIM), shared/README.md
    expected = {"nearest": (19.76, 0.530), "crossfade": (20.89, 0.541), "dis_flow": (24.86, 0.733)}
    for name, (p, s) in expected.items():
        r = evaluate(PEERS[name](keys, 30), gt, KEYS)
        assert r["psnr_heldout"] == pytest.approx(p, abs=0.01), name
        assert r["ssim_heldout"] == pytest.approx(s, abs=0.001), name
        assert r["psnr_inputs"] == 99.0


def test_eval_cli_on_folders_and_video(tmp_path):
    gt = _moving(30)
    write_frames(gt, tmp_path / "gt")
    pred = crossfade({k: gt[k] for k in KEYS})
    run = tmp_path / "run"
    write_frames(pred, run / "frames")
    (run / "metrics.json").write_text(json.dumps({"timings": {"train": 1.0}}))
    assert main(["eval", str(run), "--gt", str(tmp_path / "gt")]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["timings"] == {"train": 1.0}  # existing keys kept
    want = evaluate(pred, dict(enumerate(gt)), KEYS)
    assert m["psnr_heldout"] == pytest.approx(want["psnr_heldout"]) and m["input_indices"] == KEYS
    # a video output and explicit key frames
    write_video(pred, tmp_path / "out.mp4", 30)
    assert main(["eval", str(tmp_path / "out.mp4"), "--gt", str(tmp_path / "gt"), "--keyframes", "0,29"]) == 0
    mv = json.loads((tmp_path / "out.metrics.json").read_text())
    assert mv["inputs"]["count"] == 2 and mv["heldout"]["count"] == 28
    assert abs(mv["psnr_heldout"] - want["psnr_heldout"]) < 3  # H.264 at the default CRF
    # ground truth of the inputs alone: the earlier held-out scores are kept, and the file is strict JSON
    write_frames([gt[k] for k in KEYS], tmp_path / "gt_inputs")
    for k, f in zip(KEYS, sorted((tmp_path / "gt_inputs").glob("*.png"))):
        f.rename(f.with_name(f"frame_{k:04d}.png"))
    assert main(["eval", str(run), "--gt", str(tmp_path / "gt_inputs")]) == 0
    text = (run / "metrics.json").read_text()
    m2 = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in metrics.json is not JSON"))
    assert m2["heldout"] == m["heldout"] and m2["psnr_heldout"] == m["psnr_heldout"]
    assert m2["inputs"]["count"] == 4 and len(m2["per_frame"]) == 30
    # ground truth turned a quarter (another view than the output's): refused, metrics.json kept as it was
    write_frames([np.ascontiguousarray(np.rot90(f)) for f in gt], tmp_path / "gt_turned")
    assert main(["eval", str(run), "--gt", str(tmp_path / "gt_turned")]) == 2
    assert (run / "metrics.json").read_text() == text
    # a half-size copy of the clip is the same view: scored, at its size
    write_frames([f[::2, ::2] for f in gt], tmp_path / "gt_half")
    assert main(["eval", str(run), "--gt", str(tmp_path / "gt_half"), "--metrics", str(tmp_path / "h.json")]) == 0
    # user errors: one line, exit code 2
    assert main(["eval", str(tmp_path / "missing"), "--gt", str(tmp_path / "gt")]) == 2
    assert main(["eval", str(run), "--gt", str(tmp_path / "gt"), "--keyframes", "a,b"]) == 2


def test_eval_pairs_frames_as_the_reference_scorer_does(tmp_path, capsys):
    """Ground truth named from 1 pairs its first frame with output frame 0 (it compared output k with file k,
    one frame off); a prediction folder missing a frame scores the others by their numbers (it shifted every later
    frame onto the wrong one); ground truth of mixed sizes and --keyframes outside it are one-line errors."""
    gt = _moving(30)
    pred = crossfade({k: gt[k] for k in KEYS})
    want = evaluate(pred, dict(enumerate(gt)), KEYS)
    (tmp_path / "gt1").mkdir()
    for i, f in enumerate(gt):
        write_image(tmp_path / "gt1" / f"frame_{i + 1:04d}.png", f)
    write_frames(pred, tmp_path / "pred")
    assert main(["eval", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt1"), "--keyframes", "1,10,20,30"]) == 0
    m = json.loads((tmp_path / "pred" / "metrics.json").read_text())
    assert m["psnr_heldout"] == pytest.approx(want["psnr_heldout"]) and m["heldout"]["count"] == 26
    assert "the ground truth's first frame is number 1: it is frame 0 here" in capsys.readouterr().err
    (tmp_path / "pred" / "frame_0005.png").unlink()
    (tmp_path / "pred" / "metrics.json").unlink()
    assert main(["eval", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt1"), "--keyframes", "1,10,20,30"]) == 0
    m = json.loads((tmp_path / "pred" / "metrics.json").read_text())
    kept = dict(enumerate(gt))
    del kept[5]
    want29 = evaluate([f for i, f in enumerate(pred) if i != 5], kept, KEYS,
                      source_index=[i for i in range(30) if i != 5])
    assert m["heldout"]["count"] == 25 and m["psnr_heldout"] == pytest.approx(want29["psnr_heldout"])
    assert "no output frame for ground-truth frame 5: 29 of 30 frames scored" in capsys.readouterr().err
    write_frames(gt, tmp_path / "mixed")
    write_image(tmp_path / "mixed" / "frame_0004.png", np.zeros((2 * gt[0].shape[0], 2 * gt[0].shape[1], 3), np.uint8))
    assert main(["eval", str(tmp_path / "pred"), "--gt", str(tmp_path / "mixed")]) == 2
    assert "the ground truth's frames have different sizes" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt1"), "--keyframes", "1,99"]) == 2
    assert "--keyframes 98 not among the ground truth's frames" in capsys.readouterr().err
