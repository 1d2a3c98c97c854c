"""The nerfstudio methods ``sparsevid-nerfacto`` and ``sparsevid-splatfacto`` (entry point
``nerfstudio.method_configs`` in ``pyproject.toml``).

Each is nerfstudio 1.1.5's ``nerfacto`` / ``splatfacto`` method -- the same model (:mod:`.models`: it also builds
offline), model config, optimizers and schedules,
so that a nerfacto/splatfacto checkpoint loads into it (``--load-checkpoint``, the two-step recipe) and ``ns-render``
/ ``ns-export`` treat its runs as theirs -- with :class:`~sparsevid.nerfstudio.pipeline.SparsevidPipelineConfig`
in place of the vanilla pipeline, and the dataparser's ``eval_mode="all"``: a handful of frames are all training
frames (nerfstudio's default 90/10 split would hold one out, or none at all of 4).

The configs are written out here rather than copied from ``nerfstudio.configs.method_configs``: that module discovers
the plugins when it is imported, so importing it from a plugin is circular.
"""
from __future__ import annotations

from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanagerConfig
from nerfstudio.data.datamanagers.parallel_datamanager import ParallelDataManagerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

from sparsevid.nerfstudio.compat import allow_numpy_scalars
from sparsevid.nerfstudio.models import SparsevidNerfactoModelConfig, SparsevidSplatfactoModelConfig
from sparsevid.nerfstudio.pipeline import SparsevidPipelineConfig


def _adam(lr: float, final: float | None = None, max_steps: int = 30000, warmup: int = 0):
    sched = None if final is None else ExponentialDecaySchedulerConfig(
        lr_final=final, max_steps=max_steps, **({"warmup_steps": warmup, "lr_pre_warmup": 0} if warmup else {}))
    return {"optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15), "scheduler": sched}


def nerfacto_config() -> TrainerConfig:
    """nerfacto with sparsevid's progressive updates (CPU: runs in plain PyTorch without tiny-cuda-nn)."""
    return TrainerConfig(
        method_name="sparsevid-nerfacto",
        steps_per_eval_batch=500,
        steps_per_save=2000,
        max_num_iterations=30000,
        mixed_precision=True,
        pipeline=SparsevidPipelineConfig(
            datamanager=ParallelDataManagerConfig(
                dataparser=NerfstudioDataParserConfig(eval_mode="all"),
                train_num_rays_per_batch=4096,
                eval_num_rays_per_batch=4096,
            ),
            model=SparsevidNerfactoModelConfig(
                eval_num_rays_per_chunk=1 << 15,
                average_init_density=0.01,
                camera_optimizer=CameraOptimizerConfig(mode="SO3xR3"),
            ),
        ),
        optimizers={
            "proposal_networks": _adam(1e-2, 1e-4, 200000),
            "fields": _adam(1e-2, 1e-4, 200000),
            "camera_opt": _adam(1e-3, 1e-4, 5000),
        },
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15),
        vis="viewer",
    )


def splatfacto_config() -> TrainerConfig:
    """splatfacto with sparsevid's progressive updates (needs CUDA: nerfstudio's gsplat rasterizer)."""
    return TrainerConfig(
        method_name="sparsevid-splatfacto",
        steps_per_eval_image=100,
        steps_per_eval_batch=0,
        steps_per_save=2000,
        steps_per_eval_all_images=1000,
        max_num_iterations=30000,
        mixed_precision=False,
        pipeline=SparsevidPipelineConfig(
            datamanager=FullImageDatamanagerConfig(
                dataparser=NerfstudioDataParserConfig(load_3D_points=True, eval_mode="all"),
                cache_images_type="uint8",
            ),
            model=SparsevidSplatfactoModelConfig(),
        ),
        optimizers={
            "means": _adam(1.6e-4, 1.6e-6, 30000),
            "features_dc": _adam(0.0025),
            "features_rest": _adam(0.0025 / 20),
            "opacities": _adam(0.05),
            "scales": _adam(0.005),
            "quats": _adam(0.001),
            "camera_opt": _adam(1e-4, 5e-7, 30000, warmup=1000),
            "bilateral_grid": _adam(2e-3, 1e-4, 30000, warmup=1000),
        },
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15),
        vis="viewer",
    )


allow_numpy_scalars()  # ns-render / ns-export / --load-checkpoint with PyTorch >= 2.6 (see .compat)

sparsevid_nerfacto = MethodSpecification(
    config=nerfacto_config(),
    description="nerfacto + sparsevid's Difix3D-style progressive updates (weight-free reproject fixer by default, "
                "Difix with its weights); all frames train. CPU works.",
)

sparsevid_splatfacto = MethodSpecification(
    config=splatfacto_config(),
    description="splatfacto + sparsevid's Difix3D-style progressive updates; ns-export gaussian-splat exports it. "
                "Needs CUDA.",
)
