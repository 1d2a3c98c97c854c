"""What a run was made from, so that ``--resume`` refuses to continue it with something else.

``OUT/fingerprint.json`` holds a hash of every input file (name relative to the input, size and a
BLAKE2 hash of its bytes: copying or touching the input does not change it, editing a frame does)
and the run's configuration without the options that only say how to start (``resume``,
``overwrite``, ``output``) and without the paths of the input, poses and checkpoint, whose files are
hashed instead (the same clip given by another path, or moved, is the same run). A new run writes
it; ``--resume`` compares and names the first differences in a one-line error.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sparsevid.errors import SparsevidError
from sparsevid.io_utils import write_json

FINGERPRINT_NAME = "fingerprint.json"
#: config keys left out of the fingerprint: they do not change what the run computes, or (the paths read)
#: their files' hashes stand for them
IGNORED_KEYS = ("resume", "overwrite", "output", "input", "poses_from", "ckpt")
#: settings that are paths and compared (config.yaml records them absolute; a relative one is read from here)
PATH_SETTINGS = ("from_nerfstudio", "fuse.flow.gmflow_weights", "fixer.difix_weights")
_CHUNK = 1 << 20


def _file_hash(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


#: a sampled hash (:func:`_sampled_hash`) reads this many pieces of this size, spread evenly over the file
SAMPLES, _SAMPLE = 64, 1 << 16


def _sampled_hash(path: Path, size: int) -> str:
    """A hash of ``SAMPLES`` pieces of the file spread evenly from its first byte to its last (the whole file when
    it is smaller than them): 4 MiB read of gigabytes of model weights. Other weights (a fine-tune of the same
    network, another revision) differ in most of their tensors, so in these pieces; the same files copied or
    linked, whatever their times, hash the same."""
    if size <= SAMPLES * _SAMPLE:
        return "sample " + _file_hash(path)
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for k in range(SAMPLES):
            f.seek((size - _SAMPLE) * k // (SAMPLES - 1))
            h.update(f.read(_SAMPLE))
    return "sample " + h.hexdigest()


def files_fingerprint(path: str | Path, exclude: str | Path | None = None, content: bool = True) -> dict[str, list]:
    """``{relative name: [size, hash]}`` of a file, or of every file under a folder (hidden names
    and anything under ``exclude``, e.g. the run folder itself when it lies inside the input, are
    skipped). ``content=False``: ``[size, "sample <hash>"]``, a hash of pieces spread over the file
    (:func:`_sampled_hash`) instead of all of it, for gigabytes of model weights: files replaced or re-downloaded
    differ; the same files by another path, a link or a copy (``cp``, which gives them new times), do not."""
    def mark(p: Path) -> list:
        size = p.stat().st_size
        return [size, _file_hash(p) if content else _sampled_hash(p, size)]

    return {name: mark(p) for name, p in _input_files(Path(path).expanduser(), exclude)}


#: files a file manager leaves in folders it shows (Windows Explorer's thumbnails and folder settings): no clip's
#: content, so neither a new one nor a removed one makes another run
SYSTEM_FILES = frozenset({"thumbs.db", "ehthumbs.db", "ehthumbs_vista.db", "desktop.ini"})


def _is_system_file(name: str) -> bool:
    return Path(name).name.lower() in SYSTEM_FILES


def _input_files(path: Path, exclude: str | Path | None) -> list[tuple[str, Path]]:
    """(name, path) of a file, or of every file under a folder (see :func:`files_fingerprint`; hidden names and
    :data:`SYSTEM_FILES` left out)."""
    if path.is_file():
        return [(path.name, path)]
    skip = Path(exclude).expanduser().resolve() if exclude is not None else None
    out = []
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path)
        if any(part.startswith(".") for part in rel.parts) or _is_system_file(p.name) or not p.is_file():
            continue
        if skip is not None and p.resolve().is_relative_to(skip):
            continue
        out.append((str(rel), p))
    return out


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


#: inputs of the fingerprint that are model weights: fingerprinted by a hash of pieces of each file, not all of it
#: (:func:`files_fingerprint`), and standing for the path setting that names them
WEIGHT_INPUTS = {"difix_weights": "fixer.difix_weights"}


def run_fingerprint(config: dict, inputs: dict[str, str | Path | None], output: str | Path) -> dict:
    """The fingerprint of a run: ``config`` (JSON-able, see :func:`sparsevid.io_utils.jsonable`) without
    :data:`IGNORED_KEYS`, and the files of each named input (None entries are left out; :data:`WEIGHT_INPUTS` by
    pieces of their content)."""
    cfg = {k: v for k, v in config.items() if k not in IGNORED_KEYS}
    files = {name: files_fingerprint(p, exclude=output, content=name not in WEIGHT_INPUTS)
             for name, p in inputs.items() if p is not None}
    return {"config": json.loads(json.dumps(cfg, default=str)), "inputs": files}


#: settings that change nothing a run computes: compared as if equal (a finished clip is not redone for them)
OUTPUT_ONLY_KEYS = ("write_report", "keep_checkpoint")


def _comparable(flat: dict[str, Any]) -> dict[str, Any]:
    """Flattened settings as they act: ``device: auto`` as the device it resolves to here (``auto`` and ``cpu`` on
    a machine without a GPU are one run), :data:`OUTPUT_ONLY_KEYS` left out."""
    out = {k: v for k, v in flat.items() if k not in OUTPUT_ONLY_KEYS}
    for k in PATH_SETTINGS:  # written absolute since session 40, as typed before: both as absolute paths here
        v = out.get(k)
        if isinstance(v, str) and v and not Path(v).is_absolute() and Path(v).expanduser().exists():
            out[k] = str(Path(v).expanduser().absolute())
    if out.get("device") == "auto":
        from sparsevid.devices import cuda_available

        out["device"] = "cuda" if cuda_available() else "cpu"
    return out


def _older_weights_mark(a, b) -> bool:
    """Whether two marks of one weights file are of the same size where one was written by a sparsevid that marked
    weights by their time (``"mtime <ns>"``, before session 43): the times cannot be compared with a hash, so the
    size decides, as between two runs of that version a copy kept with its times did."""
    kinds = {str(m[1]).split(" ")[0] for m in (a, b) if isinstance(m, list) and len(m) == 2}
    return kinds == {"mtime", "sample"} and a[0] == b[0]


def _differences(old: dict, new: dict, limit: int = 3) -> tuple[list[str], list[str]]:
    """(changed config keys as 'key: old -> new', changed input files) between two fingerprints (settings as they
    act, :func:`_comparable`)."""
    a, b = _comparable(_flatten(old.get("config", {}))), _comparable(_flatten(new.get("config", {})))
    oi, ni = dict(old.get("inputs", {})), dict(new.get("inputs", {}))
    for name, key in WEIGHT_INPUTS.items():
        if name in oi and name in ni:  # the weights' files decide, not the path that named them (a link, a copy)
            a.pop(key, None)
            b.pop(key, None)
        else:  # a run of an older sparsevid recorded no weights: their path decides, as it did then
            oi.pop(name, None)
            ni.pop(name, None)
    # a setting one side lacks is one its sparsevid did not have (a run of an older version, resumed or in a batch
    # after an update): it is not a difference in what was asked for
    cfg = [f"{k}: {a[k]!r} -> {b[k]!r}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    files = []
    for name in sorted(set(oi) | set(ni)):
        fa, fb = oi.get(name, {}), ni.get(name, {})
        for f in sorted(f for f in set(fa) | set(fb) if not _is_system_file(f)):  # an older run's fingerprint has them
            if fa.get(f) != fb.get(f) and not _older_weights_mark(fa.get(f), fb.get(f)):
                state = "added" if f not in fa else "removed" if f not in fb else "changed"
                label = {"difix_weights": "the Difix weights' ", "poses_from": "the poses' ", "ckpt": "the checkpoint's "
                         }.get(name, "")
                files.append(f"{label}{f} {state}")
    return cfg[:limit] + (["..."] if len(cfg) > limit else []), files[:limit] + (["..."] if len(files) > limit else [])


def check_or_write(out: str | Path, fingerprint: dict, resume: bool) -> None:
    """New run: write ``OUT/fingerprint.json``. Resume: refuse a run whose fingerprint differs.

    A resumed run folder without a fingerprint (written by an older sparsevid) is accepted with a
    warning, and gets one.

    Raises:
        SparsevidError: ``--resume`` with a different input or configuration (one line naming the
            first differences).
    """
    from sparsevid.log import warn
    from sparsevid.outdir import os_error

    path = Path(out) / FINGERPRINT_NAME
    if resume and path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if not isinstance(old, dict):
            raise SparsevidError("unreadable run fingerprint; cannot check that --resume continues the same run",
                                 fix="use --overwrite to start over, or choose another -o", path=path)
        cfg, files = _differences(old, fingerprint)
        if cfg or files:
            what = "; ".join(x for x in (("input files differ: " + ", ".join(files)) if files else "",
                                         ("options differ: " + ", ".join(cfg)) if cfg else "") if x)
            raise SparsevidError(f"--resume would continue a run made from something else ({what})",
                                 fix="resume with the original input and options, or use --overwrite to start over "
                                     "(or choose another -o)", path=Path(out))
        return
    if resume and any((Path(out) / name).exists() for name in ("train", "poses", "run.json")):
        warn(f"{path} is missing (a run of an older sparsevid?): cannot check that --resume continues the same "
             "input and options")
    try:
        write_json(path, fingerprint)
    except OSError as e:
        raise os_error(e, path, "write the run fingerprint") from None


def earlier_run_differences(out: str | Path, settings: dict, input_path: str | Path | None,
                            limit: int = 3) -> list[str]:
    """What would make a run of ``settings`` (its ``config.yaml`` form,
    :func:`sparsevid.configfile.config_to_dict` of the config as given) on ``input_path`` differ from the earlier
    run in ``out``: ``'key: old -> new'`` for each changed setting (:data:`IGNORED_KEYS` left out), and
    ``'input files differ'`` when the input's file names or sizes are not the ones ``fingerprint.json`` holds, or,
    for an input in another folder than the one the run recorded, their bytes (a batch checks every finished clip
    with this: the bytes are hashed only for a clip that moved, or another clip of the same name). Empty: the
    same run, or nothing to compare with (no readable ``config.yaml``)."""
    import yaml

    try:
        old = yaml.safe_load((Path(out) / "config.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return []
    if not isinstance(old, dict):
        return []
    new = json.loads(json.dumps({k: v for k, v in settings.items() if k not in IGNORED_KEYS}, default=str))
    diffs, _ = _differences({"config": {k: v for k, v in old.items() if k not in IGNORED_KEYS}}, {"config": new},
                            limit)
    try:
        held = json.loads((Path(out) / FINGERPRINT_NAME).read_text()).get("inputs", {}).get("input")
    except (OSError, ValueError, AttributeError):
        held = None
    if isinstance(held, dict) and input_path is not None:
        files = _input_files(Path(input_path).expanduser(), out)
        sizes = {k: v[0] for k, v in held.items() if isinstance(v, list) and v and not _is_system_file(k)}
        if {name: p.stat().st_size for name, p in files} != sizes:
            diffs.append("input files differ")
        elif not _same_path(old.get("input"), input_path) and {name: _file_hash(p) for name, p in files} != {
                k: v[1] for k, v in held.items() if isinstance(v, list) and len(v) > 1 and not _is_system_file(k)}:
            # another folder (a clip of the same name elsewhere, a re-export) with files of the same names and
            # sizes, as uncompressed frames of one size always are: the bytes decide (a moved clip still matches)
            diffs.append("input files differ (another folder, files of the same names and sizes)")
    return diffs


def _same_path(recorded, given) -> bool:
    """Whether ``recorded`` (config.yaml's input: absolute since session 40; as typed, from the run's working folder,
    before) names the folder ``given``."""
    if not isinstance(recorded, str) or not recorded:
        return False
    try:
        return Path(recorded).expanduser().resolve() == Path(given).expanduser().resolve()
    except (OSError, RuntimeError):
        return False
