"""Trainer checkpoints that load no code: one safetensors file, tensors as tensors, the rest as JSON.

A checkpoint is a nested structure of dicts, lists, numbers, strings, tensors and numpy arrays
(see :meth:`sparsevid.gaussians.trainer.Trainer.state_dict`). :func:`save` stores every tensor /
array as a safetensors tensor and everything else as plain JSON in the file's metadata (key
``sparsevid``); the JSON refers to the tensors by name. :func:`load` parses the safetensors header
itself (8-byte length + JSON), refuses anything else -- in particular the pickled ``torch.save``
checkpoints of earlier versions, which can run arbitrary code when unpickled -- and never calls
``pickle`` or ``torch.load``.

The trainer's side lives here too: the file name in a run folder (:data:`CHECKPOINT_NAME`),
:func:`find_checkpoint`, the trainer's state (:func:`trainer_state`, what
:meth:`~sparsevid.gaussians.trainer.Trainer.state_dict` returns), :func:`save_trainer` and
:func:`restore_trainer` (behind ``Trainer.save_checkpoint`` / ``Trainer.from_checkpoint``).

Encoding of the JSON part: a tensor is ``{"__tensor__": name}``, a numpy array
``{"__ndarray__": name}``, a dict whose keys are not all strings (an optimizer's ``state``, keyed
by parameter index) ``{"__items__": [[key, value], ...]}``, a tuple a list.
"""
from __future__ import annotations

import json
import struct
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sparsevid import log
from sparsevid.errors import SparsevidError
from sparsevid.io_utils import atomic_write_bytes

if TYPE_CHECKING:
    from sparsevid.gaussians.trainer import Trainer

#: the trainer's checkpoint in a run folder (safetensors + JSON)
CHECKPOINT_NAME = "checkpoint.safetensors"
#: the pickled checkpoint of earlier versions (refused: unpickling can run code)
LEGACY_CHECKPOINT_NAME = "checkpoint.pt"

#: metadata key of the JSON part
META_KEY = "sparsevid"
#: format tag in the JSON part
FORMAT = "sparsevid-checkpoint"
FORMAT_VERSION = 3
#: refuse headers larger than this (safetensors' own limit is 100 MB)
_MAX_HEADER = 100_000_000


def _encode(obj: Any, tensors: dict[str, torch.Tensor], seen: set[int]) -> Any:
    if torch.is_tensor(obj):
        t = obj.detach().to("cpu").contiguous()
        key = f"t{len(tensors)}"
        if t.numel() and t.untyped_storage().data_ptr() in seen:  # safetensors refuses shared memory
            t = t.clone()
        if t.numel():
            seen.add(t.untyped_storage().data_ptr())
        tensors[key] = t
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(np.array(obj, copy=True, order="C"))
        return {"__ndarray__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _encode(v, tensors, seen) for k, v in obj.items()}
        return {"__items__": [[k, _encode(v, tensors, seen)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_encode(v, tensors, seen) for v in obj]
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__ndarray__"}:
            return tensors[obj["__ndarray__"]].numpy()
        if set(obj) == {"__items__"}:
            return {k: _decode(v, tensors) for k, v in obj["__items__"]}
        return {k: _decode(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    return obj


def encode(state: dict) -> bytes:
    """``state`` -> the bytes of a safetensors file (see the module doc)."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "state": _encode(state, tensors, set())}
    return save(tensors, metadata={META_KEY: json.dumps(meta)})


def save(path: str | Path, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically (a reader never sees a half-written file)."""
    return atomic_write_bytes(path, encode(state))


#: what to do with a checkpoint that cannot be loaded (a run folder without it is resumed from its poses)
RETRAIN = ("retrain: delete this file and rerun with --resume (the poses are kept), or rerun with --overwrite; "
           "with --ckpt, point at a checkpoint this version wrote")


def _refuse(path: Path, why: str) -> SparsevidError:
    return SparsevidError(f"{why}; refusing to load it",
                          fix=RETRAIN, path=path)


def _check_header(path: Path, head: bytes, size: int) -> None:
    """Raise a one-line error unless ``head`` starts a safetensors file of ``size`` bytes (the
    pickle / zip test only picks the message: nothing is ever unpickled)."""
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n <= _MAX_HEADER and 8 + n <= size and head[8:9] == b"{":
            return
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        raise _refuse(path, "this is a pickled (torch.save) checkpoint of an older sparsevid, and unpickling "
                            "a file can run arbitrary code")
    raise _refuse(path, "not a sparsevid checkpoint (not a safetensors file)")


def check_file(path: str | Path) -> Path:
    """Cheap check (the first bytes only) that ``path`` -- a checkpoint, or a folder holding one --
    is a checkpoint this version can read; returns the file.

    Raises:
        SparsevidError: missing, a pickle, or not a safetensors file (one line).
    """
    path = Path(path).expanduser()
    if path.is_dir():
        path = find_checkpoint(path) or path / CHECKPOINT_NAME
    if not path.is_file():
        raise SparsevidError("checkpoint not found", path=path,
                             fix=f"pass --ckpt OUT/train/{CHECKPOINT_NAME} of a finished or interrupted run")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
        size = path.stat().st_size
    except OSError as e:
        from sparsevid.outdir import os_error

        raise os_error(e, path, "read the checkpoint") from None
    _check_header(path, head, size)
    return path


def load(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`save`; no code is loaded (no pickle).

    Raises:
        SparsevidError: the file is missing, is a pickle (an older checkpoint), or is not a
            sparsevid safetensors checkpoint.
    """
    from safetensors.torch import load as st_load

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SparsevidError("checkpoint not found", fix="train first, or point at a run folder's "
                             "train/ checkpoint", path=path) from None
    except OSError as e:
        from sparsevid.outdir import os_error

        raise os_error(e, path, "read the checkpoint") from None
    _check_header(path, data[:9], len(data))
    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8:8 + n])
        meta = json.loads(header["__metadata__"][META_KEY])
    except (ValueError, KeyError, TypeError):
        raise _refuse(path, "not a sparsevid checkpoint (no sparsevid metadata)") from None
    if meta.get("format") != FORMAT:
        raise _refuse(path, "not a sparsevid checkpoint")
    if meta.get("version") != FORMAT_VERSION:
        raise _refuse(path, f"checkpoint format version {meta.get('version')} (this sparsevid reads "
                            f"version {FORMAT_VERSION})")
    try:
        tensors = st_load(data)
    except Exception as e:  # truncated / corrupt tensor data
        raise _refuse(path, f"corrupt checkpoint ({type(e).__name__}: {str(e)[:80]})") from None
    return _decode(meta["state"], tensors)


# --------------------------------------------------------------------------- the trainer's checkpoints


def find_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint in ``run_dir`` or None; a folder holding only an old pickled checkpoint is a
    one-line error (it is never unpickled)."""
    run_dir = Path(run_dir)
    ck = run_dir / CHECKPOINT_NAME
    if ck.is_file():
        return ck
    if (run_dir / LEGACY_CHECKPOINT_NAME).is_file():
        raise _refuse(run_dir / LEGACY_CHECKPOINT_NAME,
                      "this is a pickled (torch.save) checkpoint of an older sparsevid, and unpickling "
                      "a file can run arbitrary code")
    return None


def trainer_state(tr: "Trainer") -> dict:
    """Everything needed to resume ``tr``, as tensors, arrays and plain values (no objects)."""
    strat = {k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in tr.strategy_state.items()}
    sampler = tr._sampler.state()
    rng = {"view_order": sampler["view_order"], "noise": tr._noise_gen.get_state(),
           "noise_device": tr.device.type, "order": sampler["order"]}
    poses = ({"pose_deltas": tr.pose_deltas.detach().cpu(), "pose_optimizer": tr.pose_optimizer.state_dict()}
             if tr.pose_deltas is not None else {})
    return {**poses, "step": tr.step, "total_steps": tr.total_steps,
            "config": asdict(tr.cfg), "scene_scale": tr.scene_scale,
            "params": {k: v.detach().cpu() for k, v in tr.params.items()},
            "optimizers": {k: o.state_dict() for k, o in tr.optimizers.items()},
            "strategy_state": strat, "rng": rng,
            "views": [v.to_dict() for v in tr.views], "history": tr.history}


def save_trainer(tr: "Trainer", path: str | Path) -> Path:
    """Write ``tr``'s state to ``path`` (atomic).

    Raises:
        SparsevidError: the file cannot be written (disk full, read-only, ...), as one line.
    """
    from sparsevid.outdir import os_error

    try:
        return save(path, tr.state_dict())
    except OSError as e:
        raise os_error(e, path, f"save the checkpoint at step {tr.step}") from None


def restore_trainer(cls: type, path: str | Path, device: Any = "auto", run_dir: str | Path | None = None,
                    steps: int | None = None) -> "Trainer":
    """Rebuild a trainer of class ``cls`` exactly as it was saved (see ``Trainer.from_checkpoint``)."""
    import dataclasses

    from sparsevid.gaussians.trainer import _config_from_dict
    from sparsevid.gaussians.views import view_from_dict

    path = Path(path)
    if path.is_dir():
        path = find_checkpoint(path) or path / CHECKPOINT_NAME
    if not path.is_file():
        raise SparsevidError("checkpoint not found", fix="train first, or point at a run folder's "
                             f"train/{CHECKPOINT_NAME}", path=path)
    ck = load(path)
    try:
        cfg = _config_from_dict(ck["config"])
        if steps is not None:
            cfg = dataclasses.replace(cfg, steps=int(steps))
            ck = {**ck, "total_steps": int(steps)}
        views = [view_from_dict(v) for v in ck["views"]]
        tr = cls(cfg, views, device=device, run_dir=run_dir, _restore=ck)
        tr.step = int(ck["step"])
        for k, o in tr.optimizers.items():
            o.load_state_dict(ck["optimizers"][k])
        if tr.pose_optimizer is not None and "pose_optimizer" in ck:
            tr.pose_optimizer.load_state_dict(ck["pose_optimizer"])
        tr.strategy_state = {k: (v.to(tr.device) if torch.is_tensor(v) else v)
                             for k, v in ck["strategy_state"].items()}
        rng = ck["rng"]
        if rng["noise_device"] == tr.device.type:
            tr._noise_gen.set_state(rng["noise"])
        else:  # a CUDA stream cannot continue on the CPU (or back): reseeded
            log.warn(f"checkpoint saved on {rng['noise_device']}, resumed on {tr.device.type}: "
                     "densification noise reseeded (the run will not match an uninterrupted one)")
        tr._sampler.load_state(rng)
        tr.history = list(ck.get("history", []))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise SparsevidError(f"cannot restore the checkpoint ({type(e).__name__}: {str(e)[:100]})",
                             fix=RETRAIN, path=path) from None
    return tr
