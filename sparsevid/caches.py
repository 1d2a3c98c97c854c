"""Compile caches: where the compiled code sparsevid relies on is kept, in folders the user can see
and clear (``sparsevid cache``, ``sparsevid cache --clear``).

A fresh process pays for compiled code unless it finds it on disk:

* **inductor**: ``torch.compile`` of the CUDA training loss (Triton kernels, FX graphs). PyTorch's own
  default is ``/tmp/torchinductor_<user>``, which a reboot or a cluster node's clean-up wipes; the
  CLI points ``TORCHINDUCTOR_CACHE_DIR`` at ``<root>/inductor`` instead (unless it is set).
* **gsplat**: gsplat's CUDA extension, built once per machine (~85 s) by PyTorch's JIT loader under
  ``TORCH_EXTENSIONS_DIR`` (PyTorch's default ``~/.cache/torch_extensions``; left where the user
  has it, since moving it would force a rebuild).
* **numba**: the CPU rasterizer's kernels (``cache=True``), next to the installed module or under
  ``NUMBA_CACHE_DIR``.

``<root>`` is ``$SPARSEVID_CACHE``, else ``$XDG_CACHE_HOME/sparsevid``, else ``~/.cache/sparsevid``.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, MutableMapping


def _user_cache(env: Mapping[str, str]) -> Path:
    """The user's cache folder: ``$XDG_CACHE_HOME``, else ``~/.cache``."""
    return Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """sparsevid's cache folder (see the module doc)."""
    env = os.environ if env is None else env
    if env.get("SPARSEVID_CACHE"):
        return Path(env["SPARSEVID_CACHE"]).expanduser()
    return _user_cache(env) / "sparsevid"


def configure(env: MutableMapping[str, str] | None = None) -> dict[str, Path]:
    """Point the compile caches sparsevid owns at ``<root>`` where the user has not chosen a folder
    (call before torch compiles anything: the CLI does it first thing). Returns the inductor folder
    in use. ``env`` defaults to ``os.environ``."""
    env = os.environ if env is None else env
    if not env.get("TORCHINDUCTOR_CACHE_DIR"):
        env["TORCHINDUCTOR_CACHE_DIR"] = str(cache_root(env) / "inductor")
    return {"inductor": Path(env["TORCHINDUCTOR_CACHE_DIR"])}


@dataclass
class CacheEntry:
    """One compile cache: its name, folder, size in bytes (0 when absent) and what it holds."""

    name: str
    path: Path
    bytes: int
    what: str


def _size(path: Path) -> int:
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:  # vanished while walking (another process cleaning up)
            pass
    return total


def _torch_extensions_dir(env: Mapping[str, str]) -> Path:
    if env.get("TORCH_EXTENSIONS_DIR"):
        return Path(env["TORCH_EXTENSIONS_DIR"]).expanduser()
    return _user_cache(env) / "torch_extensions"


def entries(env: Mapping[str, str] | None = None) -> list[CacheEntry]:
    """The compile caches a run uses, with their sizes."""
    env = os.environ if env is None else env
    inductor = Path(env["TORCHINDUCTOR_CACHE_DIR"]) if env.get("TORCHINDUCTOR_CACHE_DIR") \
        else cache_root(env) / "inductor"
    ext = _torch_extensions_dir(env)
    gsplat = sorted(ext.glob("*/gsplat_cuda")) + sorted(ext.glob("gsplat_cuda"))
    out = [CacheEntry("inductor", inductor, _size(inductor),
                      "torch.compile of the CUDA training loss, when --train.compile-loss is on")]
    if gsplat:
        out += [CacheEntry("gsplat", g, _size(g), "gsplat's CUDA extension (rebuilt in ~85 s when cleared)")
                for g in gsplat]
    else:
        out.append(CacheEntry("gsplat", ext, 0, "gsplat's CUDA extension: not built here"))
    numba = Path(env["NUMBA_CACHE_DIR"]) if env.get("NUMBA_CACHE_DIR") \
        else Path(__file__).resolve().parent / "gaussians" / "__pycache__"
    nb = [p for p in numba.glob("cpu_kernels*.nb*")] if numba.is_dir() else []
    out.append(CacheEntry("numba", numba, sum(p.stat().st_size for p in nb),
                          "the CPU rasterizer's kernels (rebuilt in ~20 s when cleared)"))
    return out


def clear(names: list[str] | None = None, env: Mapping[str, str] | None = None) -> list[CacheEntry]:
    """Delete the named caches (all when None); returns what was removed. Only sparsevid's own
    files go: the inductor folder, gsplat's extension folder, the rasterizer's numba files."""
    removed = []
    for e in entries(env):
        if names is not None and e.name not in names or e.bytes == 0:
            continue
        if e.name == "numba":
            for p in e.path.glob("cpu_kernels*.nb*"):
                p.unlink(missing_ok=True)
        else:
            shutil.rmtree(e.path, ignore_errors=True)
        removed.append(e)
    return removed
