"""The job list of ``sparsevid batch`` and the one function that runs a clip, whatever the engine.

A job is a :class:`ClipSpec` (plain data, picklable: it travels to a Ray worker). :func:`run_clip`
runs the same pipeline as ``sparsevid run`` (:func:`sparsevid.pipeline.run_pipeline`) into
``OUTROOT/<clip name>/`` and returns one summary row (a dict of plain values); it never raises for
a failing clip, so one bad clip does not stop the others.
"""
from __future__ import annotations

import copy
import dataclasses
import glob
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparsevid.errors import SparsevidError
from sparsevid.runinfo import read_run_json

if TYPE_CHECKING:
    from sparsevid.pipeline import RunConfig

#: row statuses
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
#: a finished clip whose run was made with other settings or input, left as it is (no ``--overwrite``)
KEPT = "kept"
_GLOB_CHARS = set("*?[")


@dataclass
class ClipSpec:
    """One clip of a batch.

    Attributes:
        name: the clip's name, its folder under OUTROOT.
        input: the clip (folder of frames, video, COLMAP / nerfstudio dataset), an absolute path.
        output: ``OUTROOT/<name>``, an absolute path.
        config: the :class:`~sparsevid.pipeline.RunConfig` every clip starts from (its input,
            output, resume and overwrite are set per clip).
        quiet: hide the clip's info lines and progress bars while it runs (warnings still show).
        overwrite: redo the clip from scratch when its earlier run (finished or not) used other settings
            or input (``batch --overwrite``); a clip whose earlier run matches is still skipped or resumed.
    """

    name: str
    input: str
    output: str
    config: "RunConfig"
    quiet: bool = True
    overwrite: bool = False

    def clip_config(self, resume: bool = False, overwrite: bool = False) -> "RunConfig":
        """The clip's own :class:`~sparsevid.pipeline.RunConfig` (its input and output set)."""
        return dataclasses.replace(copy.deepcopy(self.config), input=Path(self.input), output=Path(self.output),
                                   resume=resume, overwrite=overwrite)

    def changes(self) -> list[str]:
        """How this clip's settings and input differ from its earlier run's (empty: none, or no earlier run);
        see :func:`sparsevid.fingerprint.earlier_run_differences`."""
        from sparsevid.configfile import config_to_dict
        from sparsevid.fingerprint import earlier_run_differences

        from sparsevid.pipeline import with_absolute_paths

        # config.yaml holds absolute paths (weights given as relative ones compared as changed settings)
        return earlier_run_differences(self.output, config_to_dict(with_absolute_paths(self.clip_config())),
                                       self.input)


def _clip_name(p: Path) -> str:
    """``clips/walk`` -> ``walk``; ``clips/walk.mp4`` -> ``walk``; ``ds/transforms.json`` -> ``ds``."""
    if p.is_file():
        if p.name == "transforms.json":
            return p.parent.resolve().name
        return p.stem
    return p.resolve().name


def is_clip_path(p: Path) -> bool:
    """Whether a path a glob matched can be a clip: a folder, a video or a ``transforms.json``
    (a named INPUT is always tried, and a file that is not a clip fails with the pipeline's error)."""
    from sparsevid.data.video import VIDEO_EXTS

    return p.is_dir() or p.name == "transforms.json" or p.suffix.lower() in VIDEO_EXTS


def expand_inputs(inputs: list[str | Path], outroot: str | Path) -> list[tuple[str, Path]]:
    """``(name, absolute path)`` per clip, in the order given: INPUTS are clip folders, videos,
    nerfstudio ``transforms.json`` files, or globs of them (expanded here, sorted; the other files a
    glob matches, e.g. ``notes.txt`` in ``clips/*``, are left out with one line). A path given
    twice counts once; anything inside OUTROOT is left out (a glob like ``clips/*`` with
    ``-o clips/out``). Names are chosen by :func:`clip_names`: a clip keeps the folder an earlier
    batch gave it, whatever else this batch holds.

    Raises:
        SparsevidError: an input that does not exist, a glob that matches nothing, or no clips.
    """
    root = Path(outroot).expanduser().resolve()
    paths: list[Path] = []
    for item in inputs:
        text = str(item)
        if not text.strip():  # Path("") is the current folder, which would be run as a clip
            raise SparsevidError("an INPUT is an empty path (an unset shell variable?)",
                                 fix="give clip folders, videos or globs of them")
        p = Path(text).expanduser()
        if p.exists():
            found = [p]
        elif _GLOB_CHARS & set(text):
            matched = [Path(m) for m in sorted(glob.glob(str(p)))]
            if not matched:
                raise SparsevidError(f"the pattern {text!r} matches nothing", fix="check the pattern (quote it, "
                                     "or let the shell expand it)")
            found = [m for m in matched if is_clip_path(m)]
            others = [m for m in matched if not is_clip_path(m)]
            if others:
                from sparsevid import log

                names = ", ".join(m.name for m in others[:5]) + (", ..." if len(others) > 5 else "")
                log.info(f"{text!r}: left out {len(others)} file{'s' if len(others) > 1 else ''} that "
                         f"{'are' if len(others) > 1 else 'is'} not a clip ({names})")
            if not found:
                from sparsevid.data.images import IMAGE_EXTS

                frames = any(m.suffix.lower() in IMAGE_EXTS for m in others)
                raise SparsevidError(f"the pattern {text!r} matches no clip, only other files",
                                     fix="give the folder that holds a clip's frames as one INPUT" if frames
                                     else "give clip folders, videos or transforms.json files")
        else:
            raise SparsevidError("INPUT not found", path=p, fix="check the path (a clip folder, a video or a glob)")
        for f in found:
            r = f.resolve()
            if r == root or root in r.parents or r in paths:
                continue
            paths.append(r)
    if not paths:
        raise SparsevidError("no clips to run (every input is inside OUTROOT)", path=root,
                             fix="give clip folders or videos outside the -o folder")
    return list(zip(clip_names(paths, root), paths))


def _candidate_names(p: Path, clash: bool):
    """The folder names a clip may get, in order: its own name (unless another clip of this batch shares it),
    then ``<parent>-<name>``, for a video ``<parent>-<name>-<extension>`` (``odd.mov`` beside ``odd.MP4``), then
    ``<parent>-<name>-2``, ``-3`` ..."""
    name = _clip_name(p)
    folder = p.parent.resolve() if p.name == "transforms.json" else p
    prefixed = f"{folder.parent.name}-{name}" if folder.parent.name else name
    if not clash:
        yield name
    yield prefixed
    if p.is_file() and p.name != "transforms.json" and p.suffix:
        yield f"{prefixed}-{p.suffix[1:]}"
    k = 2
    while True:
        yield f"{prefixed}-{k}"
        k += 1


def recorded_inputs(root: str | Path) -> dict[str, Path]:
    """``{folder name: the input it recorded}`` for the run folders directly under ``root``: the input as
    ``run.json`` (or, for a run that stopped before writing it, ``config.yaml``) names it, resolved (a relative one,
    from before session 40, from the working folder, as :func:`sparsevid.fingerprint.earlier_run_differences`
    reads it). Folders without a readable input are left out."""
    from sparsevid.pipeline import MARKER
    from sparsevid.runinfo import recorded_input

    found: dict[str, Path] = {}
    try:
        folders = sorted(d for d in Path(root).iterdir() if (d / MARKER).is_file())
    except OSError:
        return found
    for d in folders:
        recorded = recorded_input(d)
        if recorded is not None:
            try:
                found[d.name] = Path(recorded).expanduser().resolve()
            except (OSError, RuntimeError):
                pass
    return found


def clip_names(paths: list[Path], root: str | Path) -> list[str]:
    """A folder name under ``root`` (OUTROOT) for each clip of ``paths`` (resolved, distinct), stable across
    batches: a clip whose input an earlier run in ``root`` recorded keeps that run's folder, so a clip is never
    run twice under two names by batches over overlapping sets of clips. Another clip gets its own name
    (``walk`` for ``clips/walk.mp4``), or, where another clip of this batch shares that name or the folder
    belongs to an input that still exists elsewhere, ``<parent>-<name>`` (then ``-2``, ``-3`` ...): a batch
    never writes over another clip's results. A folder whose recorded input no longer exists (a moved clip) may
    be taken: its files decide whether the run is the same (:meth:`ClipSpec.changes`)."""
    recorded = recorded_inputs(root)
    owners: dict[Path, list[str]] = {}
    for folder, inp in recorded.items():
        owners.setdefault(inp, []).append(folder)
    plain = [_clip_name(p) for p in paths]
    shared = {n for n in plain if plain.count(n) > 1}
    names: list[str | None] = [None] * len(paths)
    used: set[str] = set()
    for i, p in enumerate(paths):  # first the clips an earlier batch named
        held = owners.get(p)
        if held:
            # two folders for one clip (batches before this rule): its own name first, whatever the batch holds
            order = {c: k for k, c in zip(range(64), _candidate_names(p, False))}
            names[i] = min(held, key=lambda f: (order.get(f, len(order)), f))
            used.add(names[i])
    for i, p in enumerate(paths):
        if names[i] is not None:
            continue
        for cand in _candidate_names(p, plain[i] in shared):
            other = recorded.get(cand)
            if cand in used or (other is not None and other != p and other.exists()):
                continue
            names[i] = cand
            used.add(cand)
            break
    return [str(n) for n in names]


def make_specs(inputs: list[str | Path], outroot: str | Path, config: "RunConfig",
               quiet: bool = True, overwrite: bool = False) -> list[ClipSpec]:
    """The jobs of a batch: one :class:`ClipSpec` per clip of :func:`expand_inputs`."""
    root = Path(outroot).expanduser().resolve()
    return [ClipSpec(name, str(path), str(root / name), config, quiet, overwrite)
            for name, path in expand_inputs(inputs, root)]


#: what a batch does with a clip (:func:`clip_plan`)
RUN, RESUME, REDO, SKIP, REFUSE = "run", "resume", "redo", "skip", "refuse"


def clip_plan(spec: ClipSpec) -> tuple[str, str]:
    """(what to do, why) for a clip, from its output folder (:func:`clip_state`) and its earlier run's
    settings and input (:meth:`ClipSpec.changes`):

    * ``new`` -> :data:`RUN`;
    * an earlier run made with other settings or input -> :data:`REDO` from scratch with ``spec.overwrite``,
      else :data:`REFUSE` (a :data:`KEPT` row naming the differences: its results are not these settings');
    * a finished run -> :data:`SKIP`; a half-finished one -> :data:`RESUME`."""
    state = clip_state(spec.output)
    if state == "new":
        return RUN, ""
    changes = spec.changes()
    if changes:
        why = ", ".join(changes)
        return (REDO, why) if spec.overwrite else (REFUSE, why)
    return (SKIP, "") if state == "finished" else (RESUME, "")


def refused_row(spec: ClipSpec, why: str) -> dict[str, Any]:
    """The row of a clip whose earlier run used other settings or input (``why``) and no ``--overwrite``: a finished
    one is :data:`KEPT`, with that run's numbers (they are in its folder, untouched) and the difference in ``error``;
    a half-finished one (interrupted, failed) is a failed row: there is no finished run to keep."""
    fix = "-> rerun the batch with --overwrite to redo such clips with these, or choose another -o"
    if clip_state(spec.output) != "finished":
        return failed_row(spec, f"{spec.output}: its unfinished earlier run was made with other settings or input "
                                f"({why}) {fix}")
    return clip_row(spec, KEPT, error=f"{spec.output}: kept as it was; its earlier run was made with other settings "
                                      f"or input ({why}) {fix}")


def clip_state(out: str | Path) -> str:
    """``"finished"`` (a run folder with a finished ``run.json`` and its video or frames),
    ``"partial"`` (a run folder without: an interrupted or killed run, to resume) or ``"new"``
    (anything else; a foreign non-empty folder is refused by the pipeline with a one-line error)."""
    from sparsevid.pipeline import MARKER

    out = Path(out)
    if not (out / MARKER).is_file():
        return "new"
    info = read_run_json(out)
    if (info is not None and info.get("status", "done") == "done"  # "interrupted", "reporting": not finished
            and ((out / "video.mp4").is_file() or (out / "frames").is_dir())):
        return "finished"
    return "partial"


def _flat_scalars(prefix: str, value: Any, into: dict[str, Any], depth: int = 2) -> None:
    if isinstance(value, dict):
        if depth > 0:
            for k, v in value.items():
                _flat_scalars(f"{prefix}_{k}", v, into, depth - 1)
    elif isinstance(value, (int, float, str, bool)) or value is None:
        into[prefix] = value


def clip_row(spec: ClipSpec, status: str, error: str = "", resumed: bool = False,
             wall: float | None = None, warnings: list[str] | None = None) -> dict[str, Any]:
    """A summary row; a finished run's numbers come from its ``run.json`` (all segments summed), and
    so do its warnings unless ``warnings`` (the lines this process saw) is given."""
    out = Path(spec.output)
    row: dict[str, Any] = {"clip": spec.name, "status": status, "error": error,
                           "warnings": list(warnings or []), "input": spec.input,
                           "output": spec.output, "frames": None, "device": None, "resumed": resumed,
                           "host": socket.gethostname(), "wall_s": None if wall is None else round(wall, 3),
                           "report": "", "seconds": {}, "quality": {}, "metrics": {}}
    info = read_run_json(out) if status != FAILED else None
    if info is not None:
        row["frames"] = info.get("num_frames")
        if warnings is None and isinstance(info.get("warnings"), list):
            row["warnings"] = [w for w in info["warnings"] if isinstance(w, str)]
        row["device"] = info.get("device")
        row["seconds"] = {k: v for k, v in (info.get("stage_seconds") or {}).items()
                          if isinstance(v, (int, float))}
        q: dict[str, Any] = {}
        _flat_scalars("q", info.get("quality_estimate") or {}, q, depth=1)
        row["quality"] = {k[2:]: v for k, v in q.items()}
        m: dict[str, Any] = {}
        _flat_scalars("m", info.get("metrics") or {}, m)
        row["metrics"] = {k[2:]: v for k, v in m.items()}
    if (out / "report.html").is_file():
        row["report"] = f"{spec.name}/report.html"
    return row


def failed_row(spec: ClipSpec, error: str, wall: float | None = None,
               warnings: list[str] | None = None) -> dict[str, Any]:
    """The row of a clip that failed with ``error`` (one line), after printing ``warnings``."""
    return clip_row(spec, FAILED, error=" ".join(str(error).split()), wall=wall, warnings=warnings)


def run_clip(spec: ClipSpec) -> dict[str, Any]:
    """Run one clip and return its summary row (see :mod:`sparsevid.batch.summary` for the columns):

    * a finished run in ``spec.output`` -> nothing runs, status ``skipped`` (its numbers are read
      back from its ``run.json``); an earlier run made with other settings or input is redone with
      ``spec.overwrite``, else left as it is (status ``kept``; see :func:`clip_plan`);
    * a half-finished one (the run marker without a finished ``run.json``: interrupted, or its
      worker was killed) -> the pipeline resumes it (``resume=True``: training goes on from its
      last checkpoint), status ``done`` with ``resumed`` true;
    * otherwise a new run; a failure gives status ``failed`` and the error in one line.

    Never raises for a failing clip; ``KeyboardInterrupt`` (Ctrl-C, SIGTERM: training saved a
    checkpoint at its step) propagates, so a user can stop a batch -- a re-run resumes the clip."""
    from sparsevid import log
    from sparsevid.pipeline import run_pipeline

    t0 = time.perf_counter()
    plan, why = clip_plan(spec)
    if plan == SKIP:
        return clip_row(spec, SKIPPED)
    if plan == REFUSE:
        return refused_row(spec, why)
    resume = plan == RESUME
    cfg = spec.clip_config(resume=resume, overwrite=plan == REDO)
    # the clip's warning lines start with its name (many clips may print at once) and go into its row
    with log.quieted(log.is_quiet() or spec.quiet), log.tagged(spec.name), log.recording_warnings() as warnings:
        try:
            run_pipeline(cfg)
        except SparsevidError as e:
            return failed_row(spec, e.one_line(), time.perf_counter() - t0, warnings)
        except Exception as e:  # a bug or an unexpected library error: still one row, one line
            first = (str(e).strip().splitlines() or [""])[0]
            return failed_row(spec, f"{type(e).__name__}: {first}"[:500], time.perf_counter() - t0, warnings)
    return clip_row(spec, DONE, resumed=resume, wall=time.perf_counter() - t0)
