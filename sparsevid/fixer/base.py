"""The fixer interface: what every novel-view fixer takes and returns, plus a registry.

A fixer gets a batch of rendered novel views (with the renderer's depth/alpha when known)
and a few reference views (the input frames) and returns improved images with a per-pixel
confidence. The same interface serves the progressive 3D update (fixed renders become
pseudo training views, weighted by the confidence) and the post-render enhancement.

Conventions:
  * every image lives in the undistorted PINHOLE canvas space of the renderer (the padded,
    full-field-of-view canvas), ``float32 [..., H, W, 3]`` in ``[0, 1]``, channels last;
  * ``c2ws`` are camera-to-world ``[..., 4, 4]`` with OpenCV axes (x right, y down, z forward);
  * ``Ks`` are pinhole ``[..., 3, 3]`` with the centre of the top-left pixel at (0.5, 0.5);
  * depth is z-depth ``[..., H, W, 1]`` in the units of the poses (0 or non-finite = unknown).

Registering a fixer::

    @register_fixer("myfixer")
    class MyFixer(Fixer):
        def fix(self, request: FixRequest) -> FixResult: ...

    fixer = get_fixer("myfixer", some_option=1)
"""
from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import torch

from sparsevid.errors import SparsevidError

#: the weight-free fixer used when nothing else is asked for
DEFAULT_FIXER = "reproject"

#: fixers that live in modules which register themselves on import (imported lazily, so a
#: missing optional dependency of one fixer never breaks the others)
_LAZY_MODULES: dict[str, str] = {
    "reproject": "sparsevid.fixer.reproject",
    "difix": "sparsevid.fixer.difix",
    "difix_ref": "sparsevid.fixer.difix",
}


@dataclass
class RefViews:
    """Reference views (normally the input frames), in the renderer's canvas space.

    Attributes:
        images: [R, H, W, 3] float32 in [0, 1].
        Ks: [R, 3, 3] pinhole intrinsics of the canvas.
        c2ws: [R, 4, 4] camera-to-world, OpenCV axes.
        depth: [R, H, W, 1] z-depth rendered at the reference cameras, or None.
        valid: [R, H, W, 1] float32 in {0, 1}: pixels that carry real image content (the
            canvas validity mask; padding outside the lens is 0), or None (= all valid).
    """

    images: torch.Tensor
    Ks: torch.Tensor
    c2ws: torch.Tensor
    depth: torch.Tensor | None = None
    valid: torch.Tensor | None = None

    def __post_init__(self) -> None:
        _check_images("refs.images", self.images)
        r, h, w, _ = self.images.shape
        _check_shape("refs.Ks", self.Ks, (r, 3, 3))
        _check_shape("refs.c2ws", self.c2ws, (r, 4, 4))
        if self.depth is not None:
            _check_shape("refs.depth", self.depth, (r, h, w, 1))
        if self.valid is not None:
            _check_shape("refs.valid", self.valid, (r, h, w, 1))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def select(self, idx: torch.Tensor | list[int]) -> "RefViews":
        """The subset of references at ``idx`` (a list or 1-D index tensor)."""
        idx = torch.as_tensor(idx, dtype=torch.long, device=self.images.device)
        pick = (lambda t: None if t is None else t[idx])
        return RefViews(self.images[idx], self.Ks[idx], self.c2ws[idx], pick(self.depth), pick(self.valid))

    def to(self, device: torch.device | str) -> "RefViews":
        mv = (lambda t: None if t is None else t.to(device))
        return RefViews(mv(self.images), mv(self.Ks), mv(self.c2ws), mv(self.depth), mv(self.valid))


@dataclass
class FixRequest:
    """A batch of rendered novel views to fix.

    Attributes:
        renders: [B, H, W, 3] float32 in [0, 1], the renderer's images.
        Ks: [B, 3, 3] pinhole intrinsics of the canvas.
        c2ws: [B, 4, 4] camera-to-world, OpenCV axes.
        refs: the reference views (input frames) to take detail from.
        depth: [B, H, W, 1] rendered z-depth, or None.
        alpha: [B, H, W, 1] rendered opacity in [0, 1], or None.
        valid: [B, H, W, 1] float32 in {0, 1}, the canvas validity mask (pixels inside the
            lens), or None (= all valid). Fixers leave pixels outside it as rendered.
        times: [B] float seconds of each view on the output timeline, or None (optional
            hint for fixers that smooth over time).
    """

    renders: torch.Tensor
    Ks: torch.Tensor
    c2ws: torch.Tensor
    refs: RefViews
    depth: torch.Tensor | None = None
    alpha: torch.Tensor | None = None
    valid: torch.Tensor | None = None
    times: torch.Tensor | None = None

    def __post_init__(self) -> None:
        _check_images("renders", self.renders)
        b, h, w, _ = self.renders.shape
        _check_shape("Ks", self.Ks, (b, 3, 3))
        _check_shape("c2ws", self.c2ws, (b, 4, 4))
        for name in ("depth", "alpha", "valid"):
            t = getattr(self, name)
            if t is not None:
                _check_shape(name, t, (b, h, w, 1))
        if self.refs.images.shape[1:3] != self.renders.shape[1:3]:
            raise SparsevidError(
                f"fixer references are {tuple(self.refs.images.shape[1:3])} but renders are {(h, w)}",
                fix="give the fixer references in the same canvas as the renders")
        if self.times is not None:
            _check_shape("times", self.times, (b,))

    @property
    def batch_size(self) -> int:
        return int(self.renders.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the canvas."""
        return int(self.renders.shape[1]), int(self.renders.shape[2])

    def subset(self, sl: slice) -> "FixRequest":
        """The views ``sl`` of the batch (same references)."""
        cut = (lambda t: None if t is None else t[sl])
        return FixRequest(self.renders[sl], self.Ks[sl], self.c2ws[sl], self.refs, cut(self.depth),
                          cut(self.alpha), cut(self.valid), cut(self.times))


@dataclass
class FixResult:
    """Fixed views.

    Attributes:
        images: [B, H, W, 3] float32 in [0, 1].
        confidence: [B, H, W, 1] float32 in [0, 1]: how much to trust each fixed pixel (used as
            the per-pixel weight of pseudo training views; 0 = do not learn from it).
        extras: optional named diagnostics (tensors or floats), e.g. per-view statistics.
    """

    images: torch.Tensor
    confidence: torch.Tensor
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_images("images", self.images)
        b, h, w, _ = self.images.shape
        _check_shape("confidence", self.confidence, (b, h, w, 1))

    @staticmethod
    def cat(results: list["FixResult"]) -> "FixResult":
        """Concatenate batch results along the batch axis (extras are dropped)."""
        return FixResult(torch.cat([r.images for r in results]), torch.cat([r.confidence for r in results]))


class Fixer(abc.ABC):
    """A novel-view fixer. Subclasses set ``name`` (done by :func:`register_fixer`) and
    implement :meth:`fix`. ``fix`` is batched and must not modify the request's tensors."""

    name: str = "?"
    #: whether the fixer reads weights (``FixerConfig.difix_weights``; given to another fixer, an error)
    reads_weights: bool = False

    @classmethod
    def config_kwargs(cls, config: "FixerConfig", device: torch.device | str | None = None) -> dict:
        """The constructor arguments this fixer takes from a :class:`FixerConfig` (besides its
        ``options``, which take precedence); ``device`` is the trainer's (see :func:`build_fixer`)."""
        return {}

    @classmethod
    def option_names(cls) -> set[str] | None:
        """The names ``FixerConfig.options`` may set (None: any): the constructor's keyword arguments."""
        return set() if cls.__init__ is object.__init__ else _keyword_names(cls.__init__)

    @classmethod
    def check_config(cls, config: "FixerConfig") -> None:
        """Raise a one-line :class:`SparsevidError` for a setting this fixer cannot use, before any work
        (e.g. Difix's missing weights). The default checks nothing more than :func:`check_fixer_config`."""

    @classmethod
    def weights_folder(cls, config: "FixerConfig") -> Path | None:
        """The folder of weights this fixer reads under ``config`` (None: it reads none), for the run's
        fingerprint: ``--resume`` refuses weights whose files changed."""
        return None

    @abc.abstractmethod
    def fix(self, request: FixRequest) -> FixResult:
        """Fix ``request.renders``; returns images and confidence of the same batch size."""

    def fix_in_chunks(self, request: FixRequest, chunk: int = 8) -> FixResult:
        """:meth:`fix` over batches of at most ``chunk`` views (bounds memory)."""
        if request.batch_size <= chunk:
            return self.fix(request)
        return FixResult.cat([self.fix(request.subset(slice(i, i + chunk)))
                              for i in range(0, request.batch_size, chunk)])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


_REGISTRY: dict[str, type[Fixer] | Callable[..., Fixer]] = {}
F = TypeVar("F")


def register_fixer(name: str) -> Callable[[F], F]:
    """Class (or factory) decorator: make ``get_fixer(name, **kwargs)`` build it."""

    def deco(obj: F) -> F:
        _REGISTRY[name] = obj  # type: ignore[assignment]
        if isinstance(obj, type):
            obj.name = name  # type: ignore[attr-defined]
        return obj

    return deco


def _load_lazy(name: str) -> None:
    mod = _LAZY_MODULES.get(name)
    if mod is None or name in _REGISTRY:
        return
    try:
        importlib.import_module(mod)
    except ImportError as e:
        raise SparsevidError(f"fixer {name!r} is unavailable: {e}",
                             fix="install its optional dependencies (pip install 'sparsevid[difix]') "
                                 f"or pick another fixer ({', '.join(available_fixers())})") from e


def available_fixers() -> list[str]:
    """Names of the registered fixers, plus the lazily-loaded built-in ones."""
    return sorted(set(_REGISTRY) | set(_LAZY_MODULES))


def _registered(name: str) -> type[Fixer] | Callable[..., Fixer]:
    """The class (or factory) registered as ``name``, importing its module when needed."""
    if name not in _REGISTRY:
        _load_lazy(name)
    if name not in _REGISTRY:
        raise SparsevidError(f"unknown fixer {name!r}", fix=f"use one of {', '.join(available_fixers())}")
    return _REGISTRY[name]


def get_fixer(name: str, **kwargs) -> Fixer:
    """Build the fixer registered as ``name`` with ``kwargs``."""
    fixer = _registered(name)(**kwargs)
    if not isinstance(fixer, Fixer):
        raise TypeError(f"fixer factory {name!r} returned {type(fixer).__name__}, not a Fixer")
    fixer.name = name
    return fixer


@dataclass
class FixerConfig:
    """Which fixer to use and how.

    Attributes:
        name: a name from :func:`available_fixers`; ``none`` disables fixing. The default is the
            best weight-free fixer (works without any download).
        difix_weights: folder or file of the Difix weights (only for ``name="difix"``).
        device: torch device for the fixer ("auto" = the trainer's device / CUDA when present).
        num_refs: how many nearest reference views a fixer may use per novel view (the
            reprojection fixer's ``num_refs``).
        options: extra keyword arguments passed to the fixer's constructor.
        progressive: run Difix3D progressive 3D updates during training (off by default: with the
            fusion they did not earn their time, see BENCHMARKS.md).
        enhance: fix the final frames once more after rendering (Difix3D+ post-render step).
    """

    name: str = DEFAULT_FIXER
    difix_weights: str | None = None
    device: str = "auto"
    num_refs: int = 2
    options: dict = field(default_factory=dict)
    progressive: bool = False
    enhance: bool = True


def _keyword_names(fn: Callable) -> set[str] | None:
    import inspect

    params = list(inspect.signature(fn).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.name != "self"
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def check_fixer_config(config: FixerConfig, deep: bool = True) -> None:
    """Raise a one-line :class:`SparsevidError` for fixer settings that cannot work, before any work: an
    unknown fixer, an option it does not take (with the closest name and the list), a device torch does not
    know, ``--difix-weights`` for a fixer that reads no weights, and, with ``deep`` (the fixer will run), what
    the fixer's own :meth:`Fixer.check_config` refuses (Difix: its weights not found)."""
    import difflib

    names = available_fixers()
    if config.name not in names:
        close = difflib.get_close_matches(str(config.name), names, n=1)
        raise SparsevidError(f"unknown fixer {config.name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
                             fix=f"use --fixer with one of {', '.join(names)}")
    cls = _registered(config.name)
    if config.difix_weights is not None and not getattr(cls, "reads_weights", False):
        raise SparsevidError(f"--difix-weights is given but the fixer is {config.name!r}, which reads no weights",
                             fix="add --fixer difix (or difix_ref) to use them, or drop --difix-weights")
    if config.device != "auto":
        try:
            torch.device(config.device)
        except (RuntimeError, ValueError) as e:
            raise SparsevidError(f"--fixer.device {config.device!r} is not a torch device",
                                 fix="use auto, cpu, cuda or cuda:N") from e
    if not isinstance(config.options, dict):
        raise SparsevidError(f"--fixer.options must be a mapping, got {config.options!r}",
                             fix="pass e.g. --fixer.options '{num_refs: 3}'")
    allowed = cls.option_names() if isinstance(cls, type) and issubclass(cls, Fixer) else _keyword_names(cls)
    if allowed is not None:
        allowed = allowed - {"pipeline", "config"}  # objects, not settings
        if config.options and not allowed:
            raise SparsevidError(f"the {config.name} fixer takes no options, got {next(iter(config.options))!r}",
                                 fix="drop --fixer.options")
        for key in config.options:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                raise SparsevidError(
                    f"the {config.name} fixer has no option {key!r}" + (f" (did you mean {close[0]!r}?)" if close
                                                                         else ""),
                    fix=f"use --fixer.options with some of: {', '.join(sorted(allowed))}")
    if deep and config.device != "auto" and torch.device(config.device).type == "cuda":
        from sparsevid.devices import cuda_available

        if not cuda_available():
            raise SparsevidError(f"--fixer.device {config.device}: this machine has no CUDA GPU",
                                 fix="leave --fixer.device out (auto: the run's device) or give cpu")
    if deep and isinstance(cls, type) and issubclass(cls, Fixer):
        cls.check_config(config)


def fixer_weights(config: FixerConfig) -> Path | None:
    """The folder of weights the fixer of ``config`` reads (:meth:`Fixer.weights_folder`), or None."""
    cls = _registered(config.name)
    return cls.weights_folder(config) if isinstance(cls, type) and issubclass(cls, Fixer) else None


def build_fixer(config: FixerConfig, device: torch.device | str | None = None) -> Fixer:
    """The fixer described by ``config``: its registered class takes what it needs from the config
    (:meth:`Fixer.config_kwargs`, e.g. difix ``weights``/``device``, reproject ``num_refs``), then
    ``config.options``. ``device``: the trainer's device, which a fixer uses where
    ``config.device`` is "auto" (None: "auto" stays "auto", i.e. CUDA when present)."""
    from_config = getattr(_registered(config.name), "config_kwargs", None)
    kwargs = dict(from_config(config, device)) if from_config is not None else {}
    kwargs.update(config.options)
    return get_fixer(config.name, **kwargs)


def fixer_device(config: FixerConfig, device: torch.device | str | None = None) -> torch.device | str:
    """``config.device``, or the trainer's ``device`` where the config says "auto" (and one is given)."""
    return device if config.device == "auto" and device is not None else config.device


@register_fixer("none")
class IdentityFixer(Fixer):
    """Returns the renders unchanged; confidence = rendered alpha (1 where unknown), times the
    validity mask."""

    def fix(self, request: FixRequest) -> FixResult:
        conf = render_confidence(request)
        return FixResult(request.renders.clone(), conf)


def render_confidence(request: FixRequest) -> torch.Tensor:
    """[B, H, W, 1] alpha (1 where not given) times the validity mask, clamped to [0, 1]."""
    r = request.renders
    conf = torch.ones(r.shape[:-1] + (1,), dtype=r.dtype, device=r.device)
    if request.alpha is not None:
        conf = conf * request.alpha.to(r.dtype).clamp(0, 1)
    if request.valid is not None:
        conf = conf * request.valid.to(r.dtype)
    return conf


def _check_images(name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor) or t.ndim != 4 or t.shape[-1] != 3:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name} must be a [B, H, W, 3] tensor, got {shape}")
    if not t.is_floating_point():
        raise ValueError(f"{name} must be float in [0, 1], got {t.dtype}")


def _check_shape(name: str, t: torch.Tensor, shape: tuple[int, ...]) -> None:
    if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape:
        got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name} must have shape {shape}, got {got}")
