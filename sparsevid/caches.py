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

:func:`build` (``sparsevid cache --build``, run by ``make setup``) builds what this machine's runs will need
ahead of time, so that no run pays for it: the first ``run`` on a CUDA machine would otherwise spend
~60-85 s building gsplat's extension inside its training stage.

``<root>`` is ``$SPARSEVID_CACHE``, else ``$XDG_CACHE_HOME/sparsevid``, else ``~/.cache/sparsevid``.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, MutableMapping


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


def _gsplat_dirs(ext: Path) -> list[Path]:
    """gsplat's extension folders under PyTorch's extension folder (one per Python/CUDA build tag, or none)."""
    return sorted(ext.glob("*/gsplat_cuda")) + sorted(ext.glob("gsplat_cuda"))


def _numba_files(folder: Path) -> list[Path]:
    """The rasterizer kernels' numba cache files: in ``folder`` itself (``__pycache__`` next to the
    module) or one level down (numba names a subfolder per source folder under ``NUMBA_CACHE_DIR``)."""
    if not folder.is_dir():
        return []
    return sorted(p for pat in ("cpu_kernels*.nb*", "*/cpu_kernels*.nb*") for p in folder.glob(pat))


def entries(env: Mapping[str, str] | None = None) -> list[CacheEntry]:
    """The compile caches a run uses, with their sizes."""
    env = os.environ if env is None else env
    inductor = Path(env["TORCHINDUCTOR_CACHE_DIR"]) if env.get("TORCHINDUCTOR_CACHE_DIR") \
        else cache_root(env) / "inductor"
    ext = _torch_extensions_dir(env)
    gsplat = _gsplat_dirs(ext)
    out = [CacheEntry("inductor", inductor, _size(inductor),
                      "torch.compile of the CUDA training loss, when --train.compile-loss is on")]
    if gsplat:
        out += [CacheEntry("gsplat", g, _size(g), "gsplat's CUDA extension (rebuilt in ~85 s when cleared)")
                for g in gsplat]
    else:
        out.append(CacheEntry("gsplat", ext, 0, "gsplat's CUDA extension: not built here"))
    numba = Path(env["NUMBA_CACHE_DIR"]) if env.get("NUMBA_CACHE_DIR") \
        else Path(__file__).resolve().parent / "gaussians" / "__pycache__"
    nb = _numba_files(numba)
    out.append(CacheEntry("numba", numba, sum(p.stat().st_size for p in nb),
                          "the CPU rasterizer's kernels (rebuilt in ~20 s when cleared)"))
    difix = cache_root(env) / "difix"
    out.append(CacheEntry("difix", difix, _size(difix),
                          "the Difix prompt embeddings (computed again from the weights' text encoder when cleared)"))
    return out


def foreign_inductor_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """``TORCHINDUCTOR_CACHE_DIR`` when the user set it to a folder of their own (not ``<root>/inductor``, the one
    :func:`configure` sets): it may hold other programs' files, so :func:`clear` leaves it alone."""
    env = os.environ if env is None else env
    given = env.get("TORCHINDUCTOR_CACHE_DIR")
    if not given or Path(given).expanduser().resolve() == (cache_root(env) / "inductor").resolve():
        return None
    return Path(given)


def clear(names: list[str] | None = None, env: Mapping[str, str] | None = None) -> list[CacheEntry]:
    """Delete the named caches (all when None); returns what was removed. Only sparsevid's own
    files go: the inductor folder (not one the user set, :func:`foreign_inductor_dir`), gsplat's extension folder,
    the rasterizer's numba files."""
    removed = []
    for e in entries(env):
        if names is not None and e.name not in names or e.bytes == 0:
            continue
        if e.name == "inductor" and foreign_inductor_dir(env) is not None:
            continue
        if e.name == "numba":
            for p in _numba_files(e.path):
                p.unlink(missing_ok=True)
        else:
            shutil.rmtree(e.path, ignore_errors=True)
        removed.append(e)
    return removed


def gsplat_built(env: Mapping[str, str] | None = None) -> bool:
    """Whether gsplat's CUDA extension is already built under ``TORCH_EXTENSIONS_DIR`` (a run then only
    loads it), or gsplat ships it prebuilt (``gsplat.csrc``)."""
    env = os.environ if env is None else env
    if any((g / "gsplat_cuda.so").exists() for g in _gsplat_dirs(_torch_extensions_dir(env))):
        return True
    import importlib.util

    try:
        return importlib.util.find_spec("gsplat.csrc") is not None
    except ModuleNotFoundError:  # no gsplat at all
        return False


def load_gsplat_kernels() -> None:
    """Import gsplat's CUDA extension, building it first if this machine has not (see the module doc).

    Raises:
        SparsevidError: gsplat is not installed, or it has no kernels (no CUDA toolkit to build them).
    """
    from sparsevid.errors import SparsevidError

    try:
        from gsplat.cuda._backend import _C
    except ImportError as e:
        raise SparsevidError(f"gsplat's CUDA extension cannot be loaded ({e})",
                             fix="pip install 'gsplat>=1.4,<1.6' in this environment, or run with --device cpu") from e
    if _C is None:
        raise SparsevidError("gsplat found no CUDA toolkit to build its kernels with",
                             fix="install the CUDA toolkit (nvcc) that matches PyTorch's CUDA version, "
                                 "or run with --device cpu")


def build(cuda: bool, say: Callable[[str], None] = print) -> dict[str, float]:
    """Build the compiled code a run on this machine needs; returns seconds per cache built.

    ``cuda``: the machine runs on CUDA (gsplat's extension; else nothing is built for it). The CPU
    rasterizer's numba kernels are always compiled (one tiny render with its backward): the CPU
    backend also serves CPU-side renders on a CUDA machine and the tests.
    """
    import time

    import torch

    out = {}
    if cuda:
        if gsplat_built():
            say("gsplat: its CUDA extension is already built")
        else:
            say("gsplat: building its CUDA extension (once per machine, ~1-2 min)")
        t0 = time.perf_counter()
        load_gsplat_kernels()
        out["gsplat"] = time.perf_counter() - t0
        say(f"gsplat: ready in {out['gsplat']:.1f} s")
    t0 = time.perf_counter()
    from sparsevid.gaussians.rasterize import rasterize

    g = torch.Generator().manual_seed(0)
    n = 16
    means = (torch.rand(n, 3, generator=g) - 0.5).mul(0.5).add(torch.tensor([0.0, 0.0, 3.0]))
    params = [means.requires_grad_(), torch.randn(n, 4, generator=g).requires_grad_(),
              torch.full((n, 3), 0.05).requires_grad_(), torch.full((n,), 0.5).requires_grad_(),
              torch.rand(n, 3, generator=g).requires_grad_()]
    K = torch.tensor([[[20.0, 0.0, 16.0], [0.0, 20.0, 12.0], [0.0, 0.0, 1.0]]])
    img, alpha, _ = rasterize(*params, torch.eye(4)[None], K, 32, 24, render_mode="RGB+ED", backend="cpu")
    (img.sum() + alpha.sum()).backward()
    out["numba"] = time.perf_counter() - t0
    say(f"numba: the CPU rasterizer's kernels ready in {out['numba']:.1f} s")
    return out
