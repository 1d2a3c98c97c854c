"""Reports: the comparison image, the JSON and markdown results, the machine's block of BENCHMARKS.md,
and the per-run log lines."""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from sparsevid import log
from sparsevid.errors import SparsevidError
from sparsevid.io_utils import atomic_save, atomic_write_text, jsonable
from benchmarks.harness.config import (BenchConfig, COMPARE_CONFIGS, ERR_MAX, LEARNED_PEERS, PEERS, SCHEMA,
                                       SPARSEVID_CONFIGS, TILE_MAX_WIDTH)
from benchmarks.harness.cases import Case
from benchmarks.harness.scoring import estimate_vs_truth


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    """Put ``text`` on a black bar above ``tile`` ([H, W, 3] uint8 RGB) -> [H + bar, W, 3].

    The bar height depends only on the tile width, so tiles of one row line up.
    """
    w = tile.shape[1]
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, min(0.5, w / 900)), 1
    (_, th), base = cv2.getTextSize("Ag|(", font, scale, thick)
    bar = np.zeros((th + base + 8, w, 3), np.uint8)
    shown = text
    while cv2.getTextSize(shown, font, scale, thick)[0][0] > w - 6 and len(shown) > 3:
        text = text[:-1]
        shown = text + ".."
    cv2.putText(bar, shown, (3, th + 4), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return np.concatenate([bar, tile], 0)


def error_map(pred: np.ndarray, gt: np.ndarray, vmax: float = ERR_MAX) -> np.ndarray:
    """Mean abs error over channels as an INFERNO heat map, 0 -> black, >= vmax -> yellow; [H, W, 3] uint8."""
    err = np.abs(pred.astype(np.float32) - gt.astype(np.float32)).mean(-1)
    u8 = np.clip(err / vmax * 255.0, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(u8, cv2.COLORMAP_INFERNO)[:, :, ::-1].copy()


def _frame_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def comparison_image(gt: list[np.ndarray], methods: list[tuple[str, list[np.ndarray]]],
                     frame_ids: Sequence[int], vmax: float = ERR_MAX) -> np.ndarray:
    """Rows = ``frame_ids``; columns = GT, then per method its frame and its abs-error map.

    Args:
        gt: ground-truth frames [H, W, 3] uint8.
        methods: (label, frames) per method, frames at the GT's size.
    Returns:
        [rows * (bar + h), (1 + 2 * len(methods)) * w, 3] uint8 RGB, tiles at most TILE_MAX_WIDTH wide.
    """
    h, w = gt[0].shape[:2]
    tw = min(w, TILE_MAX_WIDTH)
    th = max(1, round(h * tw / w))

    def small(im: np.ndarray) -> np.ndarray:
        return im if (tw, th) == (w, h) else cv2.resize(im, (tw, th), interpolation=cv2.INTER_AREA)

    rows = []
    for i in frame_ids:
        tiles = [_label(small(gt[i]), f"ground truth, frame {i}")]
        for name, frames in methods:
            p = _frame_psnr(frames[i], gt[i])
            tiles.append(_label(small(frames[i]), f"{name}, frame {i}: {p:.2f} dB"))
            tiles.append(_label(small(error_map(frames[i], gt[i], vmax)),
                                f"|{name} - GT| (black 0, yellow >= {vmax:.0f})"))
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)


def pick_compare_frames(n: int, keyframes: Sequence[int], wanted: Sequence[int]) -> list[int]:
    """``wanted`` held-out frames that exist; else up to 3 held-out frames spread over the clip."""
    held = [i for i in range(n) if i not in set(keyframes)]
    ok = [i for i in wanted if i in held]
    if ok:
        return ok
    return [held[j] for j in sorted({0, len(held) // 2, len(held) - 1})] if held else []


def run_key(run: dict[str, Any]) -> tuple:
    return (run["case"], run["method"], run["resolution"][0], run["resolution"][1], run.get("steps_override"))


def merge_runs(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs of ``new`` plus those of ``old`` not re-run (same case, method, resolution, steps)."""
    keys = {run_key(r) for r in new}
    return [r for r in old if run_key(r) not in keys] + new


def _fmt_signed(x: Any, digits: int = 2) -> str:
    return _fmt(x, digits) if not isinstance(x, (int, float)) else f"{x:+.{digits}f}"


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def markdown_table(runs: list[dict[str, Any]]) -> str:
    """One row per run: scores (with the pipeline's estimate of the held-out PSNR beside the true one),
    sharpness, pulse ratio, wall time per stage and peak memory."""
    head = ("| case | method | resolution | held-out PSNR dB ↑ | estimated PSNR dB | held-out SSIM ↑ | LPIPS ↓ | "
            "sharpness (1 = real) | pulse ratio | min held-out PSNR | input PSNR | input SSIM | flicker ↓ | "
            "method s | stages s | peak RSS MB | peak GPU MB |")
    ncols = head.count("|") - 1
    lines = [head, "|" + "---|" * ncols]
    for r in _sorted_runs(runs):
        res = f"{r['resolution'][0]}×{r['resolution'][1]}"
        method = _method_label(r)
        if r.get("status") == "skipped":
            why = str(r.get("skipped", "")).replace("|", "/")[:160]
            lines.append(f"| {r['case']} | {method} | {res} | skipped: {why} |" + " |" * (ncols - 4))
            continue
        if r.get("status") != "ok":
            err = str(r.get("error", "failed")).replace("|", "/")[:160]
            lines.append(f"| {r['case']} | {method} | {res} | failed: {err} |" + " |" * (ncols - 4))
            continue
        m = r["metrics"]
        q = r.get("quality_estimate") or {}
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r.get("stage_seconds", {}).items())
        pm = r.get("peak_memory", {})
        lines.append(
            f"| {r['case']} | {method} | {res} | {_fmt(m.get('psnr_heldout'))} | {_fmt(q.get('psnr_heldout'))} | "
            f"{_fmt(m.get('ssim_heldout'), 3)} | {_fmt(m.get('lpips_heldout'), 3)} | "
            f"{_fmt(m.get('sharpness_heldout'))} | {_fmt(m.get('pulse_ratio'))} | "
            f"{_fmt(m.get('psnr_heldout_min'))} | {_fmt(m.get('psnr_inputs'))} | "
            f"{_fmt(m.get('ssim_inputs'), 3)} | {_fmt(m.get('flicker'), 3)} | {_fmt(r.get('total_seconds'), 1)} | "
            f"{stages or '–'} | {_fmt(pm.get('cpu_rss_mb'), 0)} | {_fmt(pm.get('gpu_mb'), 0)} |")
    return "\n".join(lines)


def _sorted_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = {name: i for i, name in enumerate([*PEERS, *LEARNED_PEERS, *(f"sparsevid:{c}" for c in SPARSEVID_CONFIGS)])}
    return sorted(runs, key=lambda r: (r["case"], -r["resolution"][0], order.get(r["method"], 99), r["method"],
                                       r.get("steps_override") or 0))


def _method_label(r: dict[str, Any]) -> str:
    return r["method"] + (f" ({r['steps_override']} steps)" if r.get("steps_override") else "")


def estimate_table(runs: list[dict[str, Any]]) -> str | None:
    """The pipeline's leave-one-out quality estimate vs the true held-out scores, one row per scored
    sparsevid run with an estimate; None when there is none."""
    rows = []
    for r in _sorted_runs(runs):
        ev = estimate_vs_truth(r) if r.get("status") == "ok" else None
        if not ev:
            continue
        q = r.get("quality_estimate") or {}
        rows.append(f"| {r['case']} | {_method_label(r)} | {r['resolution'][0]}×{r['resolution'][1]} | "
                    f"{_fmt(ev['psnr_estimate'])} | {_fmt(ev['psnr_true'])} | {_fmt_signed(ev['psnr_error'])} | "
                    f"{_fmt(ev['ssim_estimate'], 3)} | {_fmt(ev['ssim_true'], 3)} | "
                    f"{_fmt_signed(ev['ssim_error'], 3)} | "
                    f"{str(q.get('route') or '–').replace('|', '/')} |")
    if not rows:
        return None
    head = ("| case | method | resolution | estimated PSNR dB | true PSNR dB | error dB | estimated SSIM | true SSIM | "
            "error | route |")
    return "\n".join([head, "|" + "---|" * (head.count("|") - 1), *rows])


def markdown_block(report: dict[str, Any], json_path: Path, md_base: Path) -> str:
    """The per-machine section of BENCHMARKS.md (without the markers)."""
    m = report["machine"]
    gpu = f"{m['gpu']} ({m['gpu_memory_gb']} GB), CUDA {m['cuda']}" if m.get("gpu") else "no GPU"
    commands = list(dict.fromkeys(r.get("command", report["command"]) for r in report["runs"]))
    rel = os.path.relpath(json_path, md_base)
    parts = [
        f"### {m['label']} — {report['date']}",
        "",
        f"Machine: {m['cpu_model']} ({m['cpu_cores']} cores), {gpu}; torch {m['torch']}, "
        f"Python {m['python']}, device `{m['device']}`.",
        "",
        "Command" + ("s" if len(commands) > 1 else "") + " (from the repository root):",
        "",
        *[f"    {c}" for c in commands],
        "",
        markdown_table(report["runs"]),
        "",
        *([] if (est := estimate_table(report["runs"])) is None else [
            "Estimate vs truth: the pipeline's own leave-one-out estimate of the held-out quality (`quality.json`, "
            "made without the held-out frames) beside the true held-out scores; error = estimate - truth.",
            "",
            est,
            ""]),
        f"{report['lpips']}. Held-out = every frame but the inputs {report['keyframes']}; estimated PSNR = the "
        "pipeline's leave-one-out estimate (`quality.json`; – where the configuration makes none); sharpness = "
        "variance of the Laplacian of the grey prediction / that of the real frame, mean over held-out frames "
        "(score.py's `sharpness_heldout`); pulse ratio = mean Laplacian variance of the in-between output frames / "
        "that of the output frames at input times (well below 1 = the video blurs between inputs); flicker = mean "
        "|predicted - real frame-to-frame change| (grey levels, `sparsevid.eval.flicker`); method s = the method's "
        "own wall time, scoring excluded (stages s lists every stage, `eval`/`harness_eval` = scoring); peers run in the harness process (their RSS is the harness peak), "
        "each sparsevid run in its own process. Timings on a shared machine are noisy.",
        "",
        f"Raw results: [`{rel}`]({rel})."
        + ("" if not report.get("compare_images") else " Comparisons: "
           + ", ".join(f"[`{Path(p).name}`]({os.path.relpath(p, md_base)})" for p in report["compare_images"]) + "."),
    ]
    return "\n".join(parts)


BEGIN = "<!-- bench:begin {label} -->"


END = "<!-- bench:end {label} -->"


MD_HEADER = ("# Benchmarks\n\nWritten by `benchmarks/run.py` (or `sparsevid bench`): one block per machine kind, "
             "replaced in place on every run. Inputs are frames 0, 9, 19, 29; scores on the held-out frames.\n")


def update_markdown(path: Path, label: str, body: str) -> Path:
    """Replace the ``label`` block of ``path`` with ``body`` (append it, or create the file, if missing)."""
    begin, end = BEGIN.format(label=label), END.format(label=label)
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.is_file() else MD_HEADER
    pat = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pat.search(text):
        text = pat.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    return atomic_write_text(path, text)


def _save_png(path: Path, image: np.ndarray) -> Path:
    """[H, W, 3] uint8 RGB -> PNG at maximum compression (comparison images are kept in the repo)."""
    bgr = np.ascontiguousarray(image[:, :, ::-1])

    def _write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise SparsevidError("cannot write image", fix="check the folder is writable", path=path)

    return atomic_save(path, _write)


def _compare(case: Case, outputs: dict[str, list[np.ndarray]], bench: BenchConfig, label: str) -> Path | None:
    """Write ``<out>/<case>-<machine>-compare.png``: GT, sparsevid (default first) and DIS flow."""
    svid = [k for k in (f"sparsevid:{c}" for c in COMPARE_CONFIGS) if k in outputs]
    svid += sorted(k for k in outputs if k.startswith("sparsevid:") and k not in svid)
    methods = [(svid[0], outputs[svid[0]])] if svid else []
    if "dis_flow" in outputs:
        methods.append(("DIS flow", outputs["dis_flow"]))
    ids = pick_compare_frames(len(case.frames), bench.keyframes, bench.compare_frames)
    if not methods or not ids:
        return None
    img = comparison_image(case.frames, methods, ids)
    return _save_png(bench.out / f"{case.name}-{label}-compare.png", img)


def _log_run(r: dict[str, Any]) -> None:
    if r.get("status") == "skipped":
        log.warn(f"{r['case']} {r['method']}: skipped ({r.get('skipped')})")
        return
    if r.get("status") != "ok":
        log.warn(f"{r['case']} {r['method']}: {r.get('error')}")
        return
    m = r["metrics"]
    q = r.get("quality_estimate") or {}
    est = f" (estimate {_fmt(q.get('psnr_heldout'))} dB)" if q else ""
    log.info(f"  {r['method']:<26} held-out {_fmt(m.get('psnr_heldout'))} dB{est} / {_fmt(m.get('ssim_heldout'), 3)}"
             f"  sharpness {_fmt(m.get('sharpness_heldout'))}  pulse {_fmt(m.get('pulse_ratio'))}"
             f"  inputs {_fmt(m.get('psnr_inputs'))} dB  flicker {_fmt(m.get('flicker'), 3)}"
             f"  {r['total_seconds']:.1f} s")


def _log_estimates(case: str, runs: list[dict[str, Any]]) -> None:
    """Print the pipeline's quality estimate beside the true held-out scores, one line per sparsevid run."""
    if not runs:
        return
    log.info(f"{case}: estimate vs truth (held-out PSNR dB / SSIM; estimate = the pipeline's leave-one-out)")
    for r in runs:
        ev = r.get("estimate_vs_truth")
        if r.get("status") != "ok":
            log.info(f"  {r['method']:<26} {r.get('status')}")
        elif not ev:
            log.info(f"  {r['method']:<26} no estimate   truth {_fmt(r['metrics'].get('psnr_heldout'))} / "
                     f"{_fmt(r['metrics'].get('ssim_heldout'), 3)}")
        else:
            log.info(f"  {r['method']:<26} estimate {_fmt(ev['psnr_estimate'])} / {_fmt(ev['ssim_estimate'], 3)}"
                     f"   truth {_fmt(ev['psnr_true'])} / {_fmt(ev['ssim_true'], 3)}"
                     f"   error {_fmt_signed(ev['psnr_error'])} dB / {_fmt_signed(ev['ssim_error'], 3)}")


def write_reports(bench: BenchConfig, machine: dict[str, Any], runs: list[dict[str, Any]],
                  compare_images: list[str], lpips_note: str, date: str) -> dict[str, Any]:
    """Merge with today's results for this machine, write JSON + markdown atomically, update BENCHMARKS.md."""
    label = machine["label"]
    json_path = bench.out / f"{date}-{label}.json"
    old_runs: list[dict[str, Any]] = []
    old_images: list[str] = []
    if json_path.is_file():
        try:
            old = json.loads(json_path.read_text())
            if old.get("schema") == SCHEMA:
                old_runs, old_images = old.get("runs", []), old.get("compare_images", [])
        except (json.JSONDecodeError, OSError):
            log.warn(f"{json_path}: unreadable, overwriting it")
    report = {"schema": SCHEMA, "date": date, "machine": machine, "command": bench.command,
              "keyframes": list(bench.keyframes), "lpips": lpips_note,
              "compare_images": sorted(set(old_images) | set(compare_images)),
              "runs": merge_runs(old_runs, jsonable(runs, finite=True))}
    atomic_write_text(json_path, json.dumps(jsonable(report, finite=True), indent=1))
    md_path = bench.out / f"{date}-{label}.md"
    atomic_write_text(md_path, markdown_block(report, json_path, md_path.parent) + "\n")
    if bench.update_md is not None:
        update_markdown(bench.update_md, label, markdown_block(report, json_path, bench.update_md.parent))
    log.info(f"wrote {json_path}, {md_path}" + (f", {bench.update_md}" if bench.update_md else ""))
    report["json_path"] = str(json_path)
    report["md_path"] = str(md_path)
    return report
