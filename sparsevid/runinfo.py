"""``OUT/run.json`` across interruptions: one segment per process that worked on the run.

A run interrupted during training (Ctrl-C, SIGTERM) writes ``run.json`` with ``"status":
"interrupted"`` and the stage times of that segment; ``--resume`` then writes the final
``run.json`` with every segment (``segments``), ``stage_seconds`` summed over them, and the pose
report of the run (read from ``OUT/poses/poses_report.json`` when the poses were reused).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparsevid.io_utils import write_json

RUN_JSON = "run.json"


def read_json_object(path: Path) -> dict | None:
    """A JSON file holding an object, as a dict; None where it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_run_json(out: str | Path) -> dict | None:
    """A run folder's ``run.json`` as a dict; None where it is missing, unreadable or not a JSON object."""
    return read_json_object(Path(out) / RUN_JSON)


def recorded_input(out: str | Path) -> str | None:
    """The input a run folder ``out`` recorded, as its ``run.json`` names it (``config.input``), or, for a run that
    stopped before writing one, its ``config.yaml``; None when neither names one (the embedded demo) or is readable."""
    info = read_run_json(out)
    src = info.get("config", {}).get("input") if info is not None and isinstance(info.get("config"), dict) else None
    if isinstance(src, str) and src:
        return src
    import yaml

    try:
        cfg = yaml.safe_load((Path(out) / "config.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    src = cfg.get("input") if isinstance(cfg, dict) else None
    return src if isinstance(src, str) and src else None


def previous_segments(out: str | Path) -> list[dict]:
    """The segments recorded in ``OUT/run.json`` (an older complete run.json counts as one)."""
    old = read_run_json(out)
    if old is None:
        return []
    if isinstance(old.get("segments"), list):
        return [s for s in old["segments"] if isinstance(s, dict)]
    if isinstance(old.get("stage_seconds"), dict):
        return [{"status": old.get("status", "done"), "stage_seconds": old["stage_seconds"]}]
    return []


def previous_poses(out: str | Path) -> dict | None:
    """The pose report of an earlier segment: ``run.json``'s, else ``OUT/poses/poses_report.json``."""
    old = read_run_json(out)
    if old is not None and isinstance(old.get("poses"), dict):
        return old["poses"]
    from sparsevid.poses.sfm import POSES_REPORT

    return read_json_object(Path(out) / "poses" / POSES_REPORT)


def summed(segments: list[dict]) -> dict[str, float]:
    """Per-stage seconds summed over ``segments``."""
    total: dict[str, float] = {}
    for seg in segments:
        for k, v in (seg.get("stage_seconds") or {}).items():
            if isinstance(v, (int, float)):
                total[k] = round(total.get(k, 0.0) + float(v), 3)
    return total


def segments_warnings(segments: list[dict]) -> list[str]:
    """Every warning line of ``segments``, each once, in the order they came."""
    return list(dict.fromkeys(w for seg in segments for w in seg.get("warnings") or [] if isinstance(w, str)))


def write_interrupted(out: str | Path, stage_seconds: dict[str, float], resume: bool, *, identity: dict | None = None,
                      warnings: list[str] | None = None, stage: str | None = None,
                      training: tuple[int | None, int] | None = None, rounds: list[dict] | None = None) -> None:
    """Record an interrupted segment in ``OUT/run.json`` (kept by the next ``--resume``), with what the run is
    (``identity``: its config, inputs and numbering, as the finished run.json has them, so that ``report`` and
    ``eval`` read the right input), its ``warnings`` so far and the ``stage`` it stopped in. ``training``: (the
    training step of the checkpoint saved at the interruption, or None when none was saved (a second Ctrl-C: the
    next ``--resume`` trains from the start or an older checkpoint), the total steps) when it stopped in
    training; ``rounds``: the progressive rounds its checkpoint holds (the finished run.json lists them with the
    rounds of the segment that finished the training)."""
    seg_seconds = {k: round(float(v), 3) for k, v in stage_seconds.items()}
    seg_seconds["total"] = round(sum(v for k, v in seg_seconds.items() if k != "total"), 3)
    seg: dict[str, Any] = {"status": "interrupted", "stage": stage, "stage_seconds": seg_seconds,
                           "warnings": list(warnings or [])}
    info: dict[str, Any] = dict(identity or {})
    info.update({"status": "interrupted", "stage": stage})
    if training is not None:
        step, total = None if training[0] is None else int(training[0]), int(training[1])
        seg.update(step=step, total_steps=total)
        info.update(step=step, checkpoint_saved=step is not None, total_steps=total)
    if rounds:
        seg["progressive_rounds"] = list(rounds)
    segments = (previous_segments(out) if resume else []) + [seg]
    info.update({"stage_seconds": summed(segments), "segments": segments, "poses": previous_poses(out),
                 "warnings": segments_warnings(segments)})
    if not Path(out).is_dir():  # deleted or moved during the run: writing would make it again
        return
    try:
        write_json(Path(out) / RUN_JSON, info)
    except OSError as e:  # the interruption is what the user must hear about
        from sparsevid.log import warn

        warn(f"could not record the interrupted segment in {Path(out) / RUN_JSON}: {e.strerror or e}")


def write_failed(out: str | Path, error: str, warnings: list[str], identity: dict | None = None) -> None:
    """Record in ``run.json`` that the run stopped on ``error`` (one line): ``"status": "failed"``, the error,
    what the run is (``identity``, see :func:`write_interrupted`) and the warnings so far; what an earlier segment
    recorded (times, poses) is kept."""
    path = Path(out) / RUN_JSON
    if not Path(out).is_dir():  # deleted or moved during the run: writing would make it again
        return
    info = read_json_object(path) or {}
    info.update(identity or {})
    info.update({"status": "failed", "error": error,
                 "warnings": list(dict.fromkeys([w for w in info.get("warnings") or [] if isinstance(w, str)]
                                                + list(warnings)))})
    try:
        write_json(path, info)
    except OSError:  # the folder is gone or full: the error line already says what happened
        pass


def merge(out: str | Path, run_info: dict[str, Any], resume: bool) -> dict[str, Any]:
    """The final ``run.json`` of a run: with ``resume``, the earlier segments' times added to this
    one's and the pose report kept. ``run_info["stage_seconds"]`` and ``run_info["warnings"]`` are this
    segment's; ``warnings`` becomes every finished segment's, each line once."""
    this = {"status": "done", "stage_seconds": dict(run_info.get("stage_seconds") or {}),
            "warnings": list(run_info.get("warnings") or [])}
    own = (run_info.get("fixer") or {}).get("progressive_rounds") if isinstance(run_info.get("fixer"), dict) else None
    if own:  # this segment's rounds: a later --resume of the finished run lists them again
        this["progressive_rounds"] = list(own)
    segments = (previous_segments(out) if resume else []) + [this]
    merged = dict(run_info)
    merged["status"] = "done"
    merged["stage_seconds"] = summed(segments)
    merged["warnings"] = segments_warnings(segments)
    merged["segments"] = segments
    if resume and merged.get("poses") is None:
        merged["poses"] = previous_poses(out)
    fixer = merged.get("fixer")
    if resume and isinstance(fixer, dict) and isinstance(fixer.get("progressive_rounds"), list):
        # the rounds of earlier segments (in their checkpoints) before this one's, each round once
        earlier = [r for seg in segments[:-1] for r in seg.get("progressive_rounds") or [] if isinstance(r, dict)]
        by_round = {r.get("round"): r for r in earlier + fixer["progressive_rounds"]}
        merged["fixer"] = dict(fixer, progressive_rounds=sorted(by_round.values(), key=lambda r: r.get("round") or 0))
    return merged
