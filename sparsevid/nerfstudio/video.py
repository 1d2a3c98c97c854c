"""``sparsevid run --from-nerfstudio CONFIG.yml``: sparsevid's time-exact video from a trained nerfstudio model.

The nerfstudio model takes the place of the Gaussians in :func:`sparsevid.pipeline.run_pipeline` (its ``model``
argument): the rest is the same run -- the camera path at the exact output times, rendering on the undistorted
canvas, the post-render fixer, fusion with the 2D route, the input lens re-applied, ``video.mp4``, frames,
``report.html`` and ``run.json`` -- so ``ns-train sparsevid-*`` and ``sparsevid run`` end in the same output.

The scene (input frames, lens, frame rate, ground-truth frames) is read by sparsevid's loaders from the model's
dataset (the ``transforms.json`` it trained on), or from INPUT when given, with the poses of that dataset
(``poses_from``: frames matched by index). Poses go from the dataset's world to the model's through the run's
``dataparser_transforms.json``; depth comes back in the dataset's units. Only datasets read by nerfstudio's
``nerfstudio-data`` parser (a ``transforms.json``) are supported: other parsers change the world frame in ways that
file does not record.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from sparsevid import log
from sparsevid.errors import SparsevidError

if TYPE_CHECKING:
    from sparsevid.nerfstudio.render import ModelRenderer
    from sparsevid.pipeline import RunConfig


def _data_path(config) -> Path | None:
    dm = config.pipeline.datamanager
    for p in (getattr(config, "data", None), getattr(dm, "data", None), getattr(dm.dataparser, "data", None)):
        if p is not None:
            return Path(p)
    return None


def load_renderer(config_path: str | Path, device: str = "auto") -> tuple["ModelRenderer", Path]:
    """(renderer of the model in the dataset's world, the dataset's ``transforms.json``) of a finished
    ``ns-train`` run, from its ``config.yml``."""
    try:
        from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
    except ImportError as e:
        raise SparsevidError(f"--from-nerfstudio needs nerfstudio ({e})",
                             fix="run it in the nerfstudio environment: make test-nerfstudio creates .venv-ns "
                                 "(pip install -e '.[nerfstudio]', see README)") from None
    from sparsevid.nerfstudio.compat import allow_numpy_scalars
    from sparsevid.nerfstudio.convert import model_transform
    from sparsevid.nerfstudio.render import ModelRenderer, load_model

    config_path = Path(config_path)
    if not config_path.is_file():
        raise SparsevidError("nerfstudio config not found", path=config_path,
                             fix="pass the config.yml of an ns-train run (outputs/<name>/<method>/<time>/config.yml)")
    allow_numpy_scalars()
    config, pipeline = load_model(config_path, device)
    if not isinstance(config.pipeline.datamanager.dataparser, NerfstudioDataParserConfig):
        raise SparsevidError(f"the run trained with {type(config.pipeline.datamanager.dataparser).__name__}; the "
                             "time-exact video needs a nerfstudio-data dataset (transforms.json)", path=config_path,
                             fix="train on a transforms.json (sparsevid poses writes one)")
    data = _data_path(config)
    if data is None or not data.exists():
        raise SparsevidError(f"the run's dataset {data} is not there", path=config_path,
                             fix="run from the folder ns-train ran in, or pass INPUT with the frames")
    data_dir = data if data.is_dir() else None
    data = data / "transforms.json" if data.is_dir() else data
    transform, scale = model_transform(config_path.parent / "dataparser_transforms.json", data, data_dir)
    _say_pose_corrections(pipeline.model)
    model = ModelRenderer(pipeline.model, transform, scale,
                          source=f"nerfstudio {config.method_name} ({config_path})")
    log.info(f"rendering the nerfstudio model {config.method_name} of {config_path} on {model.device}")
    return model, data


def _say_pose_corrections(model) -> None:
    """One warning line when the model learned per-camera pose corrections (nerfstudio's camera optimizer, on in
    nerfacto and sparsevid-nerfacto): the video renders at the dataset's poses, without them, so its frames at the
    input times sit that far from where the model fits its inputs."""
    opt = getattr(model, "camera_optimizer", None)
    adj = getattr(opt, "pose_adjustment", None)
    if adj is None or getattr(opt.config, "mode", "off") == "off" or adj.numel() == 0:
        return
    import math

    turn = math.degrees(float(adj.detach()[:, 3:].norm(dim=-1).max()))
    if turn >= 0.05:
        log.warn(f"the nerfstudio model learned pose corrections of up to {turn:.2f} degrees per input camera "
                 "(its camera optimizer); the video renders at the dataset's poses without them -> for frames that "
                 "line up with the inputs, train with --pipeline.model.camera-optimizer.mode off")


def prepare(cfg: "RunConfig", device: str = "auto") -> tuple["RunConfig", "ModelRenderer"]:
    """``cfg`` with the model's dataset as the input (or, with an INPUT, as ``poses_from``), progressive updates
    off (the model is trained), and the model's renderer."""
    model, data = load_renderer(cfg.from_nerfstudio, device)
    changes: dict = {"fixer": dataclasses.replace(cfg.fixer, progressive=False)}
    if cfg.input is None:
        changes["input"] = data
    elif cfg.poses_from is None:
        changes["poses_from"] = data
    return dataclasses.replace(cfg, **changes), model
