"""A nerfstudio model as sparsevid's render function.

:class:`ModelRenderer` has the interface of the Gaussian trainer's render (:meth:`sparsevid.gaussians.trainer.
Trainer.render`, :data:`sparsevid.render.frames.RenderFn`): ``render(c2ws [B, 4, 4] (OpenCV axes), Ks [B, 3, 3],
width, height) -> {"rgb": [B, H, W, 3] in [0, 1], "depth": [B, H, W, 1] z-depth, "alpha": [B, H, W, 1]}``, so
the progressive updater (during ``ns-train``) and the whole render -> fix -> fuse -> video pipeline
(``sparsevid run --from-nerfstudio``) use a nerfstudio model exactly as they use the trainer.

Camera-based models (splatfacto) render a ``Cameras`` object and give z-depth; ray-based models (nerfacto) give
the distance along each ray, turned into z-depth by the ray's ``directions_norm``. The model renders in eval mode
(nerfacto: the mean appearance embedding, no pose correction) and is put back into the mode it was in.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sparsevid.nerfstudio.convert import dataset_to_model, ns_cameras


def is_camera_model(model) -> bool:
    """True for models that render a whole camera at once (splatfacto), False for ray-based ones (nerfacto)."""
    try:
        from nerfstudio.models.splatfacto import SplatfactoModel
    except ImportError:  # gsplat missing: no splatfacto
        return False
    return isinstance(model, SplatfactoModel)


class ModelRenderer:
    """Render a nerfstudio model at sparsevid cameras.

    Args:
        model: a nerfstudio ``Model`` (``pipeline.model``).
        transform, scale: the map from the caller's world to the model's (the dataparser's ``T``, ``scale``, see
            :func:`~sparsevid.nerfstudio.convert.dataset_to_model`); None / 1: the caller already works in the
            model's world (the progressive updates during training).
        source: what the model is (recorded in ``run.json``).
    """

    def __init__(self, model, transform: np.ndarray | None = None, scale: float = 1.0, source: str | None = None):
        self.model = model
        self.transform = None if transform is None else np.asarray(transform, np.float64)
        self.scale = float(scale)
        self.source = source

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def num_gaussians(self) -> int | None:
        """The Gaussian count of a splatfacto model (None for NeRFs)."""
        n = getattr(self.model, "num_points", None)
        return int(n) if n is not None else None

    def _to_model(self, c2ws: np.ndarray) -> np.ndarray:
        if self.transform is None:
            return c2ws
        return dataset_to_model(c2ws, self.transform, self.scale)

    @torch.no_grad()
    def render(self, c2ws, Ks, width: int, height: int) -> dict[str, torch.Tensor]:
        """See the module docstring; tensors on the model's device."""
        c2ws = np.asarray(c2ws.detach().cpu() if isinstance(c2ws, torch.Tensor) else c2ws, np.float64).reshape(-1, 4, 4)
        Ks = np.asarray(Ks.detach().cpu() if isinstance(Ks, torch.Tensor) else Ks, np.float64).reshape(-1, 3, 3)
        Ks = np.broadcast_to(Ks, (len(c2ws), 3, 3))
        cams = ns_cameras(self._to_model(c2ws), Ks, int(width), int(height)).to(self.device)
        was_training = self.model.training
        self.model.eval()
        rgbs, depths, alphas = [], [], []
        try:
            for b in range(len(c2ws)):
                cam = cams[b:b + 1]
                if is_camera_model(self.model):
                    out = self.model.get_outputs_for_camera(cam)
                    z = out["depth"]
                else:
                    rays = cam.generate_rays(camera_indices=0, keep_shape=True)
                    out = self.model.get_outputs_for_camera_ray_bundle(rays)
                    z = out["depth"] / rays.metadata["directions_norm"].to(out["depth"].device)
                rgbs.append(out["rgb"][..., :3].float().clamp(0, 1).reshape(height, width, 3))
                depths.append((z.float() / self.scale).reshape(height, width, 1))
                alphas.append(out["accumulation"].float().clamp(0, 1).reshape(height, width, 1))
        finally:
            self.model.train(was_training)
        return {"rgb": torch.stack(rgbs), "depth": torch.stack(depths), "alpha": torch.stack(alphas)}


def load_model(config_path: str | Path, device: str = "auto"):
    """(nerfstudio ``TrainerConfig``, pipeline) of a finished ``ns-train`` run from its ``config.yml``, on
    ``device`` ("auto": CUDA when present), the latest checkpoint loaded, in eval mode."""
    from nerfstudio.utils.eval_utils import eval_setup

    from sparsevid.devices import resolve_device

    dev = resolve_device(device)

    def on_device(config):
        config.machine.device_type = dev.type
        # the checkpoints beside this config.yml, whatever folder the command runs in (an absolute path joined
        # to the run's base dir is itself)
        config.relative_model_dir = (Path(config_path).parent / config.relative_model_dir).resolve()
        return config

    config, pipeline, _, _ = eval_setup(Path(config_path), test_mode="inference", update_config_callback=on_device)
    if pipeline.model.device.type != dev.type:
        pipeline.to(dev)
    return config, pipeline
