"""nerfacto and splatfacto as the sparsevid methods build them: the same models (same modules and parameter names,
so checkpoints load both ways), with one difference when the machine is offline.

nerfstudio's models build an LPIPS metric (evaluation only) whose AlexNet backbone torchvision downloads at model
construction; without network access that download fails and so would ``ns-train``. Here, when it fails, the model
is built again with the backbone randomly initialised (same shapes: a checkpoint still loads, and one that holds the
real weights brings them) and a warning says that this run's LPIPS values mean nothing. Training and rendering do
not use LPIPS.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Type

from nerfstudio.models.nerfacto import NerfactoModel, NerfactoModelConfig
from nerfstudio.models.splatfacto import SplatfactoModel, SplatfactoModelConfig

from sparsevid import log


@contextlib.contextmanager
def _lpips_backbone_without_download():
    """torchmetrics' LPIPS builds its backbone through ``_get_tv_model_features(net, pretrained)``: build it
    without the pretrained weights for the duration."""
    import torchmetrics.functional.image.lpips as tm_lpips

    original = tm_lpips._get_tv_model_features
    tm_lpips._get_tv_model_features = lambda net, pretrained=False: original(net, False)
    try:
        yield
    finally:
        tm_lpips._get_tv_model_features = original


def _populate_offline_safe(model, populate) -> None:
    try:
        populate()
    except OSError as e:  # urllib's URLError (no network), an unwritable hub cache
        log.warn(f"the LPIPS metric's AlexNet weights could not be downloaded ({e}); building it with random "
                 "weights: this run's LPIPS values are meaningless (training and rendering do not use them)")
        with _lpips_backbone_without_download():
            populate()


@dataclass
class SparsevidNerfactoModelConfig(NerfactoModelConfig):
    """nerfacto (see the module docstring)."""

    _target: Type = field(default_factory=lambda: SparsevidNerfactoModel)


class SparsevidNerfactoModel(NerfactoModel):
    config: SparsevidNerfactoModelConfig

    def populate_modules(self):
        _populate_offline_safe(self, super().populate_modules)


@dataclass
class SparsevidSplatfactoModelConfig(SplatfactoModelConfig):
    """splatfacto (see the module docstring)."""

    _target: Type = field(default_factory=lambda: SparsevidSplatfactoModel)


class SparsevidSplatfactoModel(SplatfactoModel):
    config: SparsevidSplatfactoModelConfig

    def populate_modules(self):
        _populate_offline_safe(self, super().populate_modules)
