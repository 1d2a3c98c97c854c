"""sparsevid runs, each in its own spawned process (per-run peak memory; one failing run does not stop
the others): the run's spec, its ``RunConfig`` (the pipeline's named configs) and the run record."""
from __future__ import annotations

import importlib
import json
import multiprocessing
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from sparsevid import log
from sparsevid.errors import SparsevidError
from sparsevid.io_utils import atomic_write_text, jsonable
from benchmarks.harness.config import BenchConfig
from benchmarks.harness.cases import Case


def _rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024


def build_run_config(spec: dict[str, Any]) -> Any:
    """A pipeline RunConfig for one sparsevid run described by ``spec`` (see :func:`sparsevid_spec`).

    ``reference_poses`` is the default config with ``poses_from`` = the case's reference poses. The
    run folder belongs to the harness, so an earlier run there is replaced (``overwrite``).
    """
    named_config = importlib.import_module(spec["pipeline_module"]).named_config
    name = spec["config"]
    base = "default" if name == "reference_poses" else name
    extra: dict[str, Any] = {}
    if name == "reference_poses":
        extra["poses_from"] = Path(spec["poses_from"])
    elif spec.get("our_poses"):
        extra["poses_from"] = Path(spec["our_poses"])
    if spec.get("steps_override"):
        extra["steps"] = int(spec["steps_override"])
    return named_config(base, input=Path(spec["input"]), output=Path(spec["output"]),
                        keyframes=list(spec["keyframes"]), device=spec["device"], scale=1.0, seed=spec["seed"],
                        overwrite=True, write_video=spec.get("write_video", True), **extra)


def _metrics_summary(metrics: Any) -> Any:
    """The pipeline's own evaluation without its per-frame table (the harness scores every run itself)."""
    if isinstance(metrics, dict) and "heldout" in metrics:
        return {k: metrics[k] for k in ("heldout", "inputs", "flicker", "sharpness_heldout", "pulse_ratio")
                if k in metrics}
    return metrics


def quality_estimate_of(result: Any) -> dict[str, Any] | None:
    """The pipeline's leave-one-out estimate of the held-out quality: ``result.quality_estimate``, else
    ``<output_dir>/quality.json``, else None (e.g. the 3D-only configurations make none)."""
    q = getattr(result, "quality_estimate", None)
    if q is None and getattr(result, "output_dir", None) is not None:
        path = Path(result.output_dir) / "quality.json"
        try:
            q = json.loads(path.read_text()) if path.is_file() else None
        except (OSError, json.JSONDecodeError):
            log.warn(f"{path}: unreadable, no quality estimate recorded")
            q = None
    return q if isinstance(q, dict) else None


def execute_sparsevid(spec: dict[str, Any]) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Run the pipeline for ``spec`` in this process; returns (record, output frames).

    Peak memory: CPU RSS of this process (ru_maxrss) and torch.cuda.max_memory_allocated.
    """
    run_pipeline = importlib.import_module(spec["pipeline_module"]).run_pipeline
    cfg = build_run_config(spec)
    torch = sys.modules.get("torch")  # a pipeline that never imported torch used no GPU
    cuda = torch is not None and torch.cuda.is_available() and spec["device"] in ("cuda", "auto")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = run_pipeline(cfg)
    total = time.perf_counter() - t0
    gpu_mb = round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None
    record = {"kind": "sparsevid", "method": f"sparsevid:{spec['config']}",
              "stage_seconds": {k: float(v) for k, v in dict(result.stage_seconds).items() if k != "total"},
              "total_seconds": total,
              "peak_memory": {"cpu_rss_mb": round(_rss_mb(), 1), "gpu_mb": gpu_mb,
                              "pipeline_reported": jsonable(getattr(result, "peak_memory", None), finite=True)},
              "pipeline_metrics": jsonable(_metrics_summary(getattr(result, "metrics", None)), finite=True),
              "quality_estimate": jsonable(quality_estimate_of(result), finite=True),
              "output_dir": str(result.output_dir)}
    return record, [np.asarray(f) for f in result.frames]


def _child_entry(spec: dict[str, Any], result_path: str) -> None:
    """Spawned-process body: run one sparsevid config, leave record JSON + frames npz at result_path."""
    log.set_quiet(bool(spec.get("quiet", False)))
    out: dict[str, Any]
    try:
        record, frames = execute_sparsevid(spec)
        np.savez(result_path + ".npz", frames=np.stack(frames))
        out = {"ok": True, "record": jsonable(record, finite=True)}
    except SparsevidError as e:
        out = {"ok": False, "error": e.one_line()}
    except BaseException as e:  # noqa: BLE001 - report every failure to the parent
        tail = traceback.format_exc().strip().splitlines()[-6:]
        out = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": tail}
    atomic_write_text(result_path + ".json", json.dumps(out))


def run_sparsevid(spec: dict[str, Any], isolate: bool) -> tuple[dict[str, Any], list[np.ndarray] | None]:
    """Run one sparsevid config (in a spawned process when ``isolate``).

    Returns (record, frames); on failure the record has ``status: "error"`` and frames is None.
    """
    t0 = time.perf_counter()
    if not isolate:
        try:
            record, frames = execute_sparsevid(spec)
            return record | {"status": "ok"}, frames
        except SparsevidError as e:
            return _error_record(spec, e.one_line(), time.perf_counter() - t0), None
    result_path = str(Path(spec["output"]).parent / f".bench-{spec['config']}")
    for suffix in (".json", ".npz"):
        Path(result_path + suffix).unlink(missing_ok=True)
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_child_entry, args=(spec, result_path), name=f"bench-{spec['config']}")
    proc.start()
    try:
        proc.join()
    except KeyboardInterrupt:  # the child had its own Ctrl-C: its result files are of no use now
        proc.join(timeout=30)
        for suffix in (".json", ".npz"):
            Path(result_path + suffix).unlink(missing_ok=True)
        raise
    rpath = Path(result_path + ".json")
    if not rpath.is_file():
        return _error_record(spec, f"run process died (exit code {proc.exitcode})", time.perf_counter() - t0), None
    out = json.loads(rpath.read_text())
    rpath.unlink()
    if not out["ok"]:
        rec = _error_record(spec, out["error"], time.perf_counter() - t0)
        if out.get("traceback"):
            rec["traceback"] = out["traceback"]
        return rec, None
    with np.load(result_path + ".npz") as z:
        frames = list(z["frames"])
    Path(result_path + ".npz").unlink()
    return out["record"] | {"status": "ok"}, frames


def _error_record(spec: dict[str, Any], message: str, seconds: float) -> dict[str, Any]:
    return {"kind": "sparsevid", "method": f"sparsevid:{spec['config']}", "status": "error",
            "error": message, "total_seconds": seconds, "stage_seconds": {},
            "peak_memory": {"cpu_rss_mb": None, "gpu_mb": None}}


def sparsevid_spec(case: Case, config: str, bench: BenchConfig, runs_dir: Path, label: str,
                   our_poses: Path | None = None) -> dict[str, Any]:
    """The picklable description of one sparsevid run (what the spawned process needs);
    ``our_poses``: poses for the non-reference configs (see :func:`case_poses`), None = estimate."""
    w, h = case.size
    out = runs_dir / label / f"{case.name}@{w}x{h}" / config
    out.parent.mkdir(parents=True, exist_ok=True)
    return {"config": config, "input": str(case.root), "output": str(out), "keyframes": list(bench.keyframes),
            "device": bench.device, "seed": bench.seed, "steps_override": bench.steps_override,
            "poses_from": str(case.reference_transforms) if case.reference_transforms else None,
            "write_video": bench.write_video,
            "our_poses": str(our_poses) if our_poses else None,
            "pipeline_module": bench.pipeline_module, "quiet": False}


def pipeline_available(module: str = "sparsevid.pipeline") -> tuple[bool, str]:
    """Whether ``module`` (named_config, run_pipeline) can be imported."""
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        return False, f"{module} is not importable ({e})"
    if not (hasattr(mod, "named_config") and hasattr(mod, "run_pipeline")):
        return False, f"{module} has no named_config/run_pipeline"
    return True, ""
