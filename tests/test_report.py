"""``OUT/report.html``: self-contained (no network), the expected sections, missing parts left out,
``sparsevid report``; and the page in a real browser (headless Chromium, skipped without it)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sparsevid.cli import main
from sparsevid.eval.metrics import evaluate
from sparsevid.eval.peers import nearest
from sparsevid.report import REPORT_NAME, write_report
from sparsevid.video.io import write_frames, write_video

KEYS = [0, 9, 19, 29]
N = 30
CHROMIUM = Path("/usr/bin/chromium")


def _frames(n: int = N, w: int = 64, h: int = 48, seed: int = 0) -> list[np.ndarray]:
    """A small moving pattern (smooth, so H.264 and JPEG stay small)."""
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 60, (h, w, 1))
    return [np.clip(np.stack([(u * 3 + 4 * t) % 200, (v * 4 + 2 * t) % 200, np.full_like(u, 60 + 3 * t)], -1)
                    + base, 0, 255).astype(np.uint8) for t in range(n)]


def _pose_report() -> dict:
    return {"registered": 4, "points": 545, "mean_reproj_error_px": 0.42, "attempt": "features/global",
            "camera": {"model": "SIMPLE_RADIAL", "width": 64, "height": 48, "params": {"f": 50.0}},
            "focal": {"final": 50.5, "source": "fov_prior", "search": {"note": "focal not observable"}},
            "attempts": [{"name": "features/global", "registered": 4, "points": 545,
                          "mean_reproj_error_px": 0.42, "valid": True, "problems": []}], "seconds": 3.8}


def make_run_folder(out: Path, *, gt: bool = True, poses: dict | None = None, video: bool = True) -> dict[int, np.ndarray]:
    """A tiny finished-run folder as ``sparsevid run`` leaves it (frames, video, run/quality/metrics
    JSON); returns the ground-truth frames it was scored against."""
    truth = _frames()
    pred = [f if i in KEYS else np.clip(f.astype(int) + 9, 0, 255).astype(np.uint8) for i, f in enumerate(truth)]
    write_frames(pred, out / "frames")
    if video:
        write_video(pred, out / "video.mp4", 30)
    quality = {"psnr_heldout": 28.1, "ssim_heldout": 0.91, "loo_psnr": 25.0, "loo_ssim": 0.8, "loo_sharpness": 0.7,
               "detail_power": 8.0, "held_out_inputs": [9, 19], "routes": {"9": {"2d": 24.0, "3d": 22.0},
                                                                         "19": {"2d": 25.0, "3d": 23.5}},
               "route": "fused 2D + 3D", "gain_3d": 0.2}
    (out / "quality.json").write_text(json.dumps(quality))
    run = {"config": {"input": "/data/clip", "keyframes": KEYS, "fps": None, "path": {"fps": None}},
           "versions": {"sparsevid": "0.1.0"}, "device": "cpu", "fps": "30", "num_frames": N,
           "num_gaussians": 1234, "training_steps": 750, "stage_seconds": {"loading": 0.4, "poses": 3.9, "training": 12.5,
                                                    "encoding": 1.1, "total": 17.9},
           "peak_memory": {"cpu_rss_mb": 640.0}, "poses": _pose_report() if poses is None else poses,
           "quality_estimate": quality, "status": "done", "warnings": ["the camera barely moves <here>"],
           "fixer": {"name": "reproject", "enhance": True, "progressive": False, "progressive_rounds": None}}
    (out / "run.json").write_text(json.dumps(run))
    gt_frames = dict(enumerate(truth))
    if gt:
        (out / "metrics.json").write_text(json.dumps(evaluate(pred, gt_frames, KEYS)))
    return gt_frames


def _urls(text: str) -> list[str]:
    return re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', text)


def _assert_self_contained(text: str, out: Path) -> None:
    assert "http://" not in text and "https://" not in text
    assert "<link" not in text and "@import" not in text
    assert all(u.startswith("#") for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", text))  # SVG clip paths only
    for u in _urls(text):
        assert u.startswith("data:") or u.startswith("#") or (out / u).exists(), u


def test_report_is_self_contained_with_every_section(tmp_path):
    out = tmp_path / "run"
    gt = make_run_folder(out)
    path = write_report(out, gt_frames=gt)
    assert path == out / REPORT_NAME and path.is_file()
    assert not list(out.glob(".tmp-*"))  # written atomically, no leftovers
    text = path.read_text()
    _assert_self_contained(text, out)
    for sid in ("video", "timeline", "compare", "metrics", "quality", "run", "poses", "timings", "files"):
        assert f'<section id="{sid}">' in text, sid
    assert re.search(r'<video id="output-video"[^>]*src="data:video/mp4;base64,', text)
    assert re.search(r'<video id="compare-video"[^>]*src="data:video/mp4;base64,', text)
    assert text.count('class="thumb"') == len(KEYS)  # one thumbnail per input
    assert text.count('class="mark"') == len(KEYS) and text.count('class="tick"') == N
    for k in KEYS:
        assert f"input frame {k} " in text
    plot = text[text.index('id="metrics-plot"'):]
    assert plot.startswith('id="metrics-plot"><svg') and "dis_flow" in plot and "sparsevid" in plot
    assert 'id="timing-plot"' in text and "training" in text
    assert "fov_prior" in text and "features/global" in text and "545" in text
    assert re.search(r"training steps</t[hd]><td>750<", text)  # the steps trained (the config's were None)
    assert "28.10 dB" in text and "fused 2D + 3D" in text  # the estimate, with the measured value beside it
    assert "<li>the camera barely moves &lt;here&gt;</li>" in text and "reproject" in text  # warnings, the fixer
    assert path.stat().st_size < 2_000_000


def test_missing_parts_are_left_out(tmp_path):
    """No ground truth, no video.mp4, a failed pose stage: the video is encoded from the frames, the
    failure is shown, the GT sections are absent."""
    out = tmp_path / "run"
    make_run_folder(out, gt=False, video=False, poses={"failed": "only 1 of 4 frames registered -> give --focal"})
    (out / "quality.json").unlink()
    run = json.loads((out / "run.json").read_text())
    run.pop("quality_estimate")
    (out / "run.json").write_text(json.dumps(run))
    text = write_report(out).read_text()
    _assert_self_contained(text, out)
    assert re.search(r'<video id="output-video"[^>]*src="data:video/mp4;base64,', text)
    assert "only 1 of 4 frames registered" in text and 'class="fail"' in text
    for sid in ("compare", "metrics", "quality"):
        assert f'<section id="{sid}">' not in text, sid
    assert '<section id="timeline">' in text and '<section id="timings">' in text


def test_metrics_without_gt_and_given_peers(tmp_path):
    out = tmp_path / "run"
    gt = make_run_folder(out)
    text = write_report(out).read_text()  # metrics.json but no GT frames: our curve only, no GT video
    assert '<section id="metrics">' in text and '<section id="compare">' not in text and "dis_flow" not in text
    peers = {"nearest": nearest({k: gt[k] for k in KEYS}, N)}
    text = write_report(out, peer_frames=peers, gt_frames=gt).read_text()
    plot = text[text.index('id="metrics-plot"'):]
    assert "nearest" in plot and "dis_flow" not in plot


def test_a_failed_runs_page_says_why(tmp_path):
    out = tmp_path / "run"
    make_run_folder(out)
    from sparsevid.runinfo import write_failed

    write_failed(out, "frame 9 is unreadable -> re-export the clip", ["a warning"])
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed" and run["warnings"] == ["the camera barely moves <here>", "a warning"]
    text = write_report(out).read_text()
    assert '<p class="fail">The run stopped: frame 9 is unreadable -&gt; re-export the clip</p>' in text
    assert "<th>status</th><td>failed</td>" in text


def test_a_broken_file_does_not_fail_the_report(tmp_path):
    out = tmp_path / "run"
    make_run_folder(out)
    (out / "metrics.json").write_text("{not json")
    (out / "frames" / "frame_0009.png").write_bytes(b"garbage")
    text = write_report(out).read_text()
    assert '<section id="video">' in text and '<section id="metrics">' not in text


def test_cli_report(tmp_path, capsys):
    out = tmp_path / "run"
    gt = make_run_folder(out)
    write_frames([gt[i] for i in range(N)], tmp_path / "case")
    assert main(["report", str(out), "--gt", str(tmp_path / "case")]) == 0
    text = (out / REPORT_NAME).read_text()
    assert '<section id="compare">' in text and "dis_flow" in text
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    # a folder that is not a run (here the clip itself) is refused, and nothing is written into it
    before = sorted(p.name for p in (tmp_path / "case").iterdir())
    assert main(["report", str(tmp_path / "case")]) == 2
    assert "not a sparsevid output folder" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "case").iterdir()) == before


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")
def test_report_in_headless_chromium(tmp_path):
    """Open the page from disk in Chromium with every host unresolvable: the video decodes, the plots
    render, and the page requested nothing but itself (Resource Timing lists every fetch)."""
    out = tmp_path / "run"
    gt = make_run_folder(out)
    text = write_report(out, gt_frames=gt).read_text()
    probe = ("<script>window.addEventListener('load',function(){seekTo(0.3);setTimeout(function(){var v=document."
             "getElementById('output-video');var r=performance.getEntriesByType('resource').map(function(e){return e.name});"
             "var p=document.createElement('pre');p.id='probe';p.textContent=JSON.stringify({resources:r,"
             "video:v?{ready:v.readyState,duration:v.duration,w:v.videoWidth,t:v.currentTime}:null,svgs:document.querySelectorAll"
             "('.plot svg').length,thumbs:document.querySelectorAll('.thumb img').length});"
             "document.body.appendChild(p);},300);});</script>")
    page = out / "probe.html"
    page.write_text(text.replace("</body>", probe + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
             "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'p'}"]
    dom = subprocess.run([str(CHROMIUM), *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, dom[-2000:]
    import html as _html

    probe_data = json.loads(_html.unescape(m.group(1)))
    assert probe_data["resources"] == [] or all(r.startswith(("data:", "file:")) for r in probe_data["resources"])
    assert probe_data["svgs"] >= 2 and probe_data["thumbs"] == len(KEYS)
    assert probe_data["video"] is not None and probe_data["video"]["ready"] >= 1, probe_data  # metadata decoded
    assert probe_data["video"]["w"] == 64 and abs(probe_data["video"]["duration"] - N / 30) < 0.05
    assert abs(probe_data["video"]["t"] - 0.3) < 1e-3  # a timeline thumbnail's seekTo() moves the video
    assert re.search(r'<video id="output-video"[^>]*src="data:video/mp4', dom)

    shot = tmp_path / "shot.png"
    subprocess.run([str(CHROMIUM), *flags, "--window-size=1000,1400", f"--screenshot={shot}",
                    (out / REPORT_NAME).as_uri()], capture_output=True, timeout=120)
    from sparsevid.video.io import read_image

    img = read_image(shot)
    assert img.shape[:2] == (1400, 1000) and img.std() > 20  # not a blank page
    shutil.rmtree(tmp_path / "p", ignore_errors=True)


def test_report_cli_scores_a_larger_ground_truth_at_the_runs_size(tmp_path, monkeypatch):
    """`report OUT --gt` with ground truth at twice the run's size: the peers are scored at the size the run's
    own scores (metrics.json) were, not at the ground truth's, so the table compares like with like."""
    import cv2

    import sparsevid.report.html as report_html

    out = tmp_path / "out"
    gt = make_run_folder(out)
    write_frames([cv2.resize(gt[i], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC) for i in sorted(gt)],
                 tmp_path / "gt2")
    seen = {}
    real = report_html.write_report
    monkeypatch.setattr(report_html, "write_report",
                        lambda o, gt_frames=None, **kw: seen.update(gt_frames) or real(o, gt_frames=gt_frames, **kw))
    assert main(["report", str(out), "--gt", str(tmp_path / "gt2")]) == 0
    assert len(seen) == N and {f.shape[:2] for f in seen.values()} == {gt[0].shape[:2]}


def test_report_gt_scores_the_output_against_that_ground_truth(tmp_path, capsys):
    """`report OUT --gt X` scored only the peers against X: a run without metrics.json got no per-frame section,
    and one with metrics.json showed its numbers against other frames (26 frames beside the peer's 13)."""
    import re

    out = tmp_path / "run"
    gt = make_run_folder(out, gt=False)
    write_frames([gt[i] for i in range(N)], tmp_path / "case")
    assert main(["report", str(out), "--gt", str(tmp_path / "case")]) == 0
    text = (out / REPORT_NAME).read_text()
    assert 'id="metrics-plot"' in text  # scored here, with no metrics.json
    write_frames([gt[i] for i in range(15)], tmp_path / "half")
    (out / "metrics.json").write_text(json.dumps(evaluate([gt[i] for i in range(N)], gt, KEYS)))  # other numbers
    assert main(["report", str(out), "--gt", str(tmp_path / "half")]) == 0
    page = (out / REPORT_NAME).read_text()
    table = page[page.index("held-out PSNR (dB)"):]
    table = re.sub(r"<[^>]+>", " ", table[:table.index("</table>")])
    rows = {m.group(1): m.group(2) for m in re.finditer(r"\b(sparsevid|dis_flow)\s+\S+\s+\S+\s+\S+\s+(\d+)", table)}
    assert rows == {"sparsevid": "13", "dis_flow": "13"}, rows  # frames 0-14 less the inputs 0 and 9


def test_report_and_eval_wait_for_a_run_still_writing_its_folder(tmp_path, capsys):
    """`report` on a folder a run is still writing made a page of half its outputs ("input: embedded demo", 0
    frames) with exit 0; `eval` wrote metrics.json beside it. Both are one-line errors while the lock is held."""
    from sparsevid.outdir import RUN_MARKER, locked

    out = tmp_path / "run"
    gt = make_run_folder(out)
    (out / RUN_MARKER).write_text("")
    write_frames([gt[i] for i in range(N)], tmp_path / "case")
    with locked(out, fix="-"):
        for argv in (["report", str(out)], ["eval", str(out), "--gt", str(tmp_path / "case")]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert "another sparsevid process is writing this output folder" in err and "wait for the run" in err
    assert not (out / REPORT_NAME).exists()
    assert main(["report", str(out)]) == 0


def test_the_comparison_video_plays_in_the_clips_time():
    """At 60 fps from a 30 fps clip every other output frame has ground truth: the comparison plays at 30 fps
    (it played at 60, twice too fast); at the clip's own rate it plays at that rate."""
    from fractions import Fraction

    from sparsevid.report.html import RunFolder, _pairs_rate

    f = RunFolder(out=Path("."))
    f.out_fps = Fraction(60)
    assert _pairs_rate(f, [(2 * k, k) for k in range(30)]) == 30
    f.out_fps = Fraction(30000, 1001)
    assert _pairs_rate(f, [(k, k) for k in range(30)]) == Fraction(30000, 1001)
    f.out_fps = Fraction(45)
    assert _pairs_rate(f, [(3 * k, 2 * k) for k in range(10)]) == 15
