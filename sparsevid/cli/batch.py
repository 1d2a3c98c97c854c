"""``sparsevid batch``: many clips, one ``sparsevid run`` each, on Ray (a laptop or a cluster) or
in a local loop."""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path


def add_parser(sub) -> None:
    from sparsevid.cli.flags import add_flags, section_titles
    from sparsevid.pipeline import RunConfig

    p = sub.add_parser(
        "batch", help="many clips: one `run` per clip on Ray (local or cluster) or in a local loop",
        description="Run the whole pipeline (as `sparsevid run`) on every clip into OUTROOT/<clip name>/: one Ray "
                    "task per clip (GPU-aware scheduling, retries on worker loss that resume from the clip's "
                    "checkpoint), or one clip after another with --engine local. Clips already finished in OUTROOT "
                    "are skipped, half-finished ones resume, finished ones made with other settings are kept as they "
                    "are (--overwrite redoes them), a failing clip is reported and does not stop the "
                    "others. Writes OUTROOT/summary.csv, summary.json and summary.html (linking each clip's "
                    "report.html). Exit status 1 when a clip failed or was kept with other settings.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        usage="sparsevid batch INPUT [INPUT ...] -o OUTROOT [--engine {ray,local}] [--config FILE | --config-name "
              "NAME]\n                       [--keyframes I,J,...] [--device D] [--SECTION.FIELD VALUE ...] "
              "(every `run` flag)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="clip folders (frames, COLMAP or nerfstudio datasets), videos, or globs of them "
                        "(e.g. 'clips/*'); the clip's name (folder name, video name; <parent>-<name> where another clip shares it) names its "
                        "output folder, and a clip keeps the folder an earlier batch in OUTROOT gave it")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUTROOT",
                   help="output root: one run folder per clip, and the summary (on a cluster: a path every "
                        "node sees, e.g. a shared file system)")
    p.add_argument("--config-name", default=None, metavar="NAME",
                   help="named configuration to start from (as `run`; default: default)")
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="start from the configuration in this file (a run's OUT/config.yaml); its input and "
                        "output are replaced per clip")
    p.add_argument("--engine", choices=["ray", "local"], default=None,
                   help="ray: one Ray task per clip; local: one clip after another in this process "
                        "(default: ray when it is installed, else local)")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join: auto (the cluster this machine belongs to) or ray://HOST:PORT; "
                        "default: start a local Ray cluster on this machine")
    p.add_argument("--gpus-per-clip", type=float, default=None, metavar="N",
                   help="GPUs each clip's task asks Ray for (default: 1 when this machine has CUDA, else 0)")
    p.add_argument("--cpus-per-clip", type=float, default=1.0, metavar="N", help="CPUs each clip's task asks Ray for")
    p.add_argument("--overwrite", action="store_true",
                   help="redo a clip from scratch when its earlier run in OUTROOT (finished or not) used other "
                        "settings or input; clips whose earlier run matches are still skipped or resumed, so the "
                        "same command can be rerun after an interruption (without it such a clip fails, naming "
                        "the differences)")
    p.add_argument("--max-retries", type=int, default=3, metavar="N",
                   help="Ray re-runs a clip whose worker died (node lost, killed) this often; the re-run "
                        "resumes from the clip's last training checkpoint")
    # every setting of `run` (as there: --SECTION.FIELD, with run's short aliases such as --keyframes, --device,
    # --steps), for every clip; the output folder and --resume / --overwrite are the batch's own business
    add_flags(p, batch_flags(), root_title="every `sparsevid run` setting, applied to every clip",
              titles=section_titles(RunConfig))
    p.set_defaults(func=run)


#: RunConfig fields that `batch` sets per clip itself (not flags of its own)
_PER_CLIP = ("output", "resume", "overwrite")


def batch_flags():
    """``run``'s derived flags (:func:`sparsevid.cli.run.run_flags`) less the per-clip ones."""
    from sparsevid.cli.run import run_flags

    return [fl for fl in run_flags() if fl.path not in _PER_CLIP]


def batch_config(args):
    """The :class:`~sparsevid.pipeline.RunConfig` every clip starts from: ``sparsevid run``'s
    :func:`~sparsevid.cli.run.config_from_args` with the batch's flags (input/output per clip)."""
    from sparsevid.cli import run as run_cli
    from sparsevid.cli.flags import Parser, given

    parser = Parser(add_help=False)
    run_cli.add_parser(parser.add_subparsers(dest="command", parser_class=Parser))
    argv = ["run"]  # the batch's flags, passed on as `run` flags, as typed
    for name in ("config_name", "config"):
        value = getattr(args, name)
        if value is not None:
            argv += ["--" + name.replace("_", "-"), str(value)]
    for fl in batch_flags():
        g = given(args, fl)
        if g is not None:
            argv += [g.flag] if fl.negatives else [g.flag, g.text]
    return run_cli.config_from_args(parser.parse_args(argv))


def _default_gpus() -> float:
    try:
        import torch

        return 1.0 if torch.cuda.is_available() else 0.0
    except Exception:
        return 0.0


def run(args) -> int:
    from sparsevid import log
    from sparsevid.batch.engines import INSTALL_HINT, BatchProgress, ray_available, run_local, run_ray
    from sparsevid.batch.jobs import REFUSE, SKIP, SKIPPED, clip_plan, clip_row, clip_state, make_specs, refused_row
    from sparsevid.batch.summary import counts, write_summary
    from sparsevid.errors import SparsevidError, interrupt_signum

    engine = args.engine or ("ray" if ray_available() else "local")
    if engine == "ray" and not ray_available():
        raise SparsevidError("--engine ray needs Ray, which is not installed", fix=INSTALL_HINT)
    if args.address and engine != "ray":
        raise SparsevidError("--address is a Ray cluster address; --engine local runs here",
                             fix="drop --address or use --engine ray")
    for flag, v in (("--gpus-per-clip", args.gpus_per_clip), ("--cpus-per-clip", args.cpus_per_clip)):
        if v is not None and v < 0:
            raise SparsevidError(f"{flag} must be >= 0, got {v:g}", fix=f"pass e.g. {flag} 1")
    if args.max_retries < 0:
        raise SparsevidError(f"--max-retries must be >= 0, got {args.max_retries}", fix="pass e.g. --max-retries 3")
    cfg = batch_config(args)  # every flag checked before any work
    root = Path(args.output).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise SparsevidError("OUTROOT exists and is a file", path=root, fix="choose another -o folder")
    specs = make_specs(args.inputs, root, cfg, quiet=True, overwrite=args.overwrite)

    rows = {s.name: None for s in specs}
    todo = []
    for s in specs:  # finished clips are not even scheduled (the worker checks again)
        plan, why = clip_plan(s)
        if plan == SKIP:
            rows[s.name] = clip_row(s, SKIPPED)
        elif plan == REFUSE:
            rows[s.name] = refused_row(s, why)
            log.warn(f"[{s.name}] {rows[s.name]['error']}")
        else:
            todo.append(s)
    started_ray = False
    gpus = args.gpus_per_clip if args.gpus_per_clip is not None else _default_gpus()
    if engine == "ray" and todo:  # connect before any output: a bad --address or too few GPUs is a one-line error
        from sparsevid.batch.engines import check_capacity, init_ray

        started_ray = init_ray(args.address)  # (imports Ray once its log settings are made)
        import ray

        try:
            check_capacity(ray, args.cpus_per_clip, gpus, args.address)
        except SparsevidError:
            if started_ray:
                ray.shutdown()
            raise
    root.mkdir(parents=True, exist_ok=True)
    done_before = sum(r is not None and r["status"] == SKIPPED for r in rows.values())
    log.info(f"{len(specs)} clips -> {root} ({done_before} already finished); engine {engine}"
             + (f" at {args.address}" if engine == "ray" and args.address else ""))

    def pending_row(s, status="pending"):
        return {"clip": s.name, "status": status, "error": "", "input": s.input, "output": s.output}

    def on_row(row):
        rows[row["clip"]] = row
        write_summary(root, [r if r is not None else pending_row(s) for s, r in zip(specs, rows.values())])

    write_summary(root, [r if r is not None else pending_row(s) for s, r in zip(specs, rows.values())])
    try:
        with (BatchProgress(len(todo), skipped=len(specs) - len(todo)) if todo else contextlib.nullcontext()) \
                as progress:  # nothing to run: no progress line
            if not todo:
                pass
            elif engine == "ray":
                run_ray(todo, on_row, progress, address=args.address, gpus_per_clip=gpus,
                        cpus_per_clip=args.cpus_per_clip, max_retries=args.max_retries)
            else:
                run_local(todo, on_row, progress)
    except KeyboardInterrupt as e:  # a clip stopped half-way is "interrupted" (it resumes), one never started "pending"
        write_summary(root, [r if r is not None else
                             pending_row(s, "interrupted" if clip_state(s.output) == "partial" else "pending")
                             for s, r in zip(specs, rows.values())])
        log.error("interrupted -> rerun the same command: finished clips are skipped, the others resume from "
                  "their last checkpoint")
        return 128 + interrupt_signum(e)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    final = list(rows.values())
    write_summary(root, final)
    c = counts(final)
    log.info(f"{c.get('done', 0)} done, {c.get('skipped', 0)} skipped, {c.get('failed', 0)} failed"
             + (f", {c['kept']} kept with other settings (--overwrite redoes them)" if c.get("kept") else "")
             + (f", {c['elsewhere']} run by another process" if c.get("elsewhere") else "")
             + f" -> {root / 'summary.html'}")
    return 1 if c.get("failed") or c.get("kept") else 0
