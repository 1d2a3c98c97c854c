"""``SparsevidPipeline``: nerfstudio's ``VanillaPipeline`` with sparsevid's progressive updates.

Same as sparsevid's own trainer (:func:`sparsevid.pipeline.train_stage`), with a nerfstudio model in place of the
Gaussians:

- **setup** (when training starts): the training images become a sparsevid :class:`~sparsevid.data.scene.Scene`
  (frame index from the file name, time = index / fps: :func:`~sparsevid.nerfstudio.convert.scene_from_dataset`),
  undistorted onto the full-field-of-view pinhole canvas with its validity mask
  (:func:`sparsevid.fuse.route3d.input_views`); the camera path through them at the exact output times
  (:class:`~sparsevid.path.camera_path.CameraPath`) gives the target cameras (the times that are not inputs);
  the fixer is :func:`sparsevid.fixer.base.build_fixer` of ``fixer`` (``reproject``, weight-free, by default;
  ``difix`` / ``difix_ref`` with ``difix_weights``) and the updater
  :func:`sparsevid.pipeline.progressive_updater` -- the same objects, schedule and settings
  (:class:`~sparsevid.fixer.progressive.ProgressiveConfig`) as ``sparsevid run --progressive``;
- **rounds**: the updater's hooks (:meth:`~sparsevid.fixer.progressive.ProgressiveUpdater.hooks`) run as nerfstudio
  training callbacks before the iteration of their step, counted from the first step of this ``ns-train`` run
  (after ``--load-checkpoint`` too). A round renders the pseudo cameras with the model
  (:class:`~sparsevid.nerfstudio.render.ModelRenderer`), fixes them and adds them as ``kind="pseudo"``
  :class:`~sparsevid.gaussians.views.TrainView` objects with the fixer's confidence as per-pixel mask and
  ``progressive.pseudo_weight`` as loss weight. Every round's views are kept;
- **steps**: sparsevid's :class:`~sparsevid.gaussians.views.ViewSampler` picks, step by step, a real input (then
  the step is nerfstudio's own: the datamanager's batch and the model's loss) or a pseudo view for
  ``pseudo_fraction`` of the steps once there are any. A pseudo step renders that view and replaces the model's
  photometric loss by the confidence-weighted one: nerfacto's ``rgb_loss`` by the confidence-weighted MSE over a
  batch of rays drawn among its pixels of non-zero confidence, splatfacto's ``main_loss`` by sparsevid's
  :func:`~sparsevid.gaussians.losses.photometric_loss` (L1 + SSIM masked by the confidence), both times the
  view's weight; the model's other terms (interlevel/distortion, scale regularisation) stay. Pseudo views use no
  learned pose correction (they are rendered and fixed in the dataset's frame) and, in nerfacto, the appearance
  embedding of the nearest input.

Pseudo views live in memory, not in nerfstudio's checkpoints: a run continued with ``--load-checkpoint`` starts its
own rounds. After each round and at the end the run folder gets ``sparsevid_progressive.json`` (settings, rounds,
the number of steps that trained on pseudo views) and ``sparsevid_pseudo_views.safetensors`` (every pseudo view:
``images``, ``masks`` -- the confidence weights --, ``c2ws`` in nerfstudio's world with OpenCV axes, ``Ks``,
``weights``, ``rounds``).
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Type

import numpy as np
import torch
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig

from sparsevid import log
from sparsevid.fixer.base import FixerConfig
from sparsevid.fixer.progressive import ProgressiveConfig, ProgressiveUpdater
from sparsevid.gaussians.views import TrainView, ViewSampler
from sparsevid.fixer.progressive import nearest_cameras
from sparsevid.nerfstudio.convert import dataset_fps, ns_cameras, scene_from_dataset
from sparsevid.nerfstudio.render import ModelRenderer, is_camera_model
from sparsevid.path.camera_path import PathConfig


@dataclass
class SparsevidPipelineConfig(VanillaPipelineConfig):
    """nerfstudio's pipeline plus sparsevid's progressive updates (see the module docstring)."""

    _target: Type = field(default_factory=lambda: SparsevidPipeline)
    fixer: FixerConfig = field(default_factory=lambda: FixerConfig(progressive=True))
    """the fixer (name: reproject | difix | difix_ref | none; difix_weights: a local folder of the weights);
    fixer.progressive False turns the progressive updates off"""
    progressive: ProgressiveConfig = field(default_factory=ProgressiveConfig)
    """the rounds: as sparsevid's trainer (fix_steps count from the first step of this ns-train run)"""
    path: PathConfig = field(default_factory=PathConfig)
    """the output camera path whose in-between cameras are the targets of the rounds"""
    pseudo_fraction: float = 0.5
    """share of the steps on pseudo views once there are some (sparsevid's TrainConfig.pseudo_fraction)"""
    canvas_scale: float = 1.0
    """resolution of the pseudo views relative to the training images"""
    fps: Optional[float] = None
    """source frame rate; None: the fps key of the dataset's transforms.json, else 30"""
    cpu_pseudo_views: int = 8
    """on the CPU, at most this many pseudo views per round (sparsevid run's cpu_pseudo_views)"""
    seed: int = 0
    """seeds the choice of views and of pseudo-view rays"""


class _TrainerView:
    """What the progressive updater calls on a trainer: ``render`` and ``add_views``."""

    def __init__(self, pipeline: "SparsevidPipeline"):
        self.pipeline = pipeline
        self.renderer = ModelRenderer(pipeline.model)

    def render(self, c2ws, Ks, width: int, height: int) -> dict[str, torch.Tensor]:
        return self.renderer.render(c2ws, Ks, width, height)

    def add_views(self, views: list[TrainView]) -> None:
        self.pipeline.add_views(views)


@contextlib.contextmanager
def _no_pose_correction(model):
    """nerfacto applies its learned per-camera pose correction to every training ray; a pseudo view has no camera
    of its own, so its rays go through uncorrected (as it was rendered)."""
    opt = getattr(model, "camera_optimizer", None)
    if opt is None:
        yield
        return
    opt.apply_to_raybundle = lambda raybundle: None  # instance attribute over the method, removed below
    try:
        yield
    finally:
        del opt.apply_to_raybundle


class SparsevidPipeline(VanillaPipeline):
    """See the module docstring. ``views`` holds the inputs (canvas) and every round's pseudo views; ``updater``
    the :class:`ProgressiveUpdater` (None until training starts, or with the updates off)."""

    config: SparsevidPipelineConfig

    def __init__(self, config: SparsevidPipelineConfig, device: str,
                 test_mode: Literal["test", "val", "inference"] = "val", world_size: int = 1, local_rank: int = 0,
                 grad_scaler=None):
        super().__init__(config, device, test_mode=test_mode, world_size=world_size, local_rank=local_rank,
                         grad_scaler=grad_scaler)
        self.views: list[TrainView] = []
        self.updater: ProgressiveUpdater | None = None
        self.input_order: list[int] = []  # dataset index of each input view
        self.sampler = ViewSampler(config.seed)
        self._rays_gen = torch.Generator().manual_seed(config.seed)
        self.pseudo_steps = 0  # training steps taken on a pseudo view
        self.start_step = 0  # the first step of this ns-train run
        self.record_dir: Path | None = None  # the run folder (sparsevid_progressive.json, ...)

    # ---- setup -------------------------------------------------------------------------
    def setup_progressive(self, total_steps: int) -> dict:
        """Build the scene, the input views, the path, the fixer and the updater; returns its hooks
        ``{step (from the start of this run): hook(trainer)}``."""
        from sparsevid.fixer.base import build_fixer
        from sparsevid.fuse.route3d import input_views
        from sparsevid.path.camera_path import CameraPath
        from sparsevid.pipeline import progressive_updater
        from sparsevid.poses.undistort import Undistorter

        cfg = self.config
        dm = self.datamanager
        data = getattr(getattr(dm, "dataparser", None), "config", None)
        fps = dataset_fps(getattr(data, "data", None), cfg.fps)
        scene, self.input_order = scene_from_dataset(dm.train_dataset, fps)
        und = Undistorter.for_camera(scene.camera, cfg.canvas_scale, "full")
        if und.capped_warning:
            log.warn(und.capped_warning)
        self.views = input_views(scene, und)
        path = CameraPath.from_scene(scene, cfg.path).frames(cfg.path, scene.fps)
        prog = cfg.progressive
        if self.device.type == "cpu":
            prog = dataclasses.replace(prog, max_views_per_round=min(prog.max_views_per_round or cfg.cpu_pseudo_views,
                                                                     cfg.cpu_pseudo_views))
        fixer = build_fixer(cfg.fixer, self.device)
        self.updater = progressive_updater(self.views, path, und, fixer, prog)
        hooks = self.updater.hooks(total_steps)
        w, h = und.canvas_size
        log.info(f"sparsevid progressive updates: {len(scene.frames)} inputs {scene.indices} at {scene.fps} fps, "
                 f"{len(self.updater.target_c2ws)} target cameras, fixer {fixer.name}, {w}x{h} canvas, "
                 f"rounds at steps {sorted(hooks)} of {total_steps}")
        return hooks

    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes):
        callbacks = super().get_training_callbacks(training_callback_attributes)
        if not self.config.fixer.progressive or self.config.fixer.name == "none":
            return callbacks
        trainer = training_callback_attributes.trainer
        start = int(getattr(trainer, "_start_step", 0)) if trainer is not None else 0
        total = int(trainer.config.max_num_iterations) if trainer is not None else 30000
        self.start_step = start
        self.record_dir = Path(trainer.base_dir) if trainer is not None else None
        view = _TrainerView(self)
        for rel, hook in self.setup_progressive(total).items():
            callbacks.append(TrainingCallback(where_to_run=[TrainingCallbackLocation.BEFORE_TRAIN_ITERATION],
                                              func=self._run_hook, args=[hook, view], iters=(start + rel,)))
        callbacks.append(TrainingCallback(where_to_run=[TrainingCallbackLocation.AFTER_TRAIN],
                                          func=lambda step: self.write_record()))
        return callbacks

    def _run_hook(self, hook, view: _TrainerView, step: int) -> None:
        hook(view)
        self.write_record()

    def write_record(self) -> None:
        """``sparsevid_progressive.json`` and ``sparsevid_pseudo_views.safetensors`` in the run folder (see the
        module docstring)."""
        if self.record_dir is None or self.updater is None:
            return
        from safetensors.torch import save_file

        from sparsevid.io_utils import write_json

        cfg, up = self.config, self.updater
        pseudo = self.pseudo_views
        rec = {"fixer": up.fixer.name, "progressive": dataclasses.asdict(up.config),
               "pseudo_fraction": cfg.pseudo_fraction, "start_step": self.start_step,
               "num_inputs": len(self.input_order), "num_targets": int(len(up.target_c2ws)),
               "rounds": [{"round": r.round, "step": self.start_step + r.step, "num_views": r.num_views,
                           "mean_confidence": r.mean_confidence} for r in up.history],
               "num_pseudo_views": len(pseudo), "pseudo_steps": self.pseudo_steps}
        self.record_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.record_dir / "sparsevid_progressive.json", rec)
        if pseudo:
            t = (lambda xs, dt=torch.float32: torch.from_numpy(np.stack(xs)).to(dt).contiguous())
            save_file({"images": t([v.image for v in pseudo]), "masks": t([v.mask for v in pseudo]),
                       "c2ws": t([v.c2w for v in pseudo], torch.float64), "Ks": t([v.K for v in pseudo], torch.float64),
                       "weights": torch.tensor([float(v.weight) for v in pseudo]),
                       "rounds": torch.tensor([int(v.round) for v in pseudo])},
                      str(self.record_dir / "sparsevid_pseudo_views.safetensors"))

    # ---- views -------------------------------------------------------------------------
    def add_views(self, views: list[TrainView]) -> None:
        """Add pseudo views (earlier rounds' views are kept)."""
        self.views.extend(views)

    @property
    def pseudo_views(self) -> list[TrainView]:
        return [v for v in self.views if v.kind != "input"]

    # ---- training steps ----------------------------------------------------------------
    def get_train_loss_dict(self, step: int):
        if len(self.views) > len(self.input_order) and self.model.training:
            i = self.sampler.next(self.views, self.config.pseudo_fraction)
            if self.views[i].kind != "input":
                self.pseudo_steps += 1
                return self.pseudo_loss_dict(self.views[i])
        return super().get_train_loss_dict(step)

    def _nearest_input(self, view: TrainView) -> int:
        c2ws = np.stack([v.c2w for v in self.views if v.kind == "input"])
        return self.input_order[int(nearest_cameras(c2ws, view.c2w[None])[0])]

    def pseudo_loss_dict(self, view: TrainView):
        """(outputs, loss dict, metrics dict) of one step on pseudo view ``view`` (see the module docstring)."""
        model = self.model
        cam = ns_cameras(view.c2w[None], view.K[None], view.width, view.height)
        image = torch.from_numpy(view.image)
        mask = torch.from_numpy(view.mask)
        weight = float(view.weight)
        if is_camera_model(model):
            from sparsevid.gaussians.losses import photometric_loss

            outputs = self._model(cam.to(self.device))  # no cam_idx: no pose correction, no bilateral grid
            batch = {"image": image}
            metrics = model.get_metrics_dict(outputs, batch)
            loss_dict = model.get_loss_dict(outputs, batch, metrics)
            pred = outputs["rgb"]
            gt = model.get_gt_img(image)
            m = model._downscale_if_required(mask).to(self.device)  # splatfacto's coarse-to-fine schedule
            loss, _, _ = photometric_loss(pred[None], gt[None], m[None], weight, ssim_weight=model.config.ssim_lambda)
            loss_dict["main_loss"] = loss
            return outputs, loss_dict, metrics
        n = int(self.datamanager.get_train_rays_per_batch())
        yx = torch.nonzero(mask[..., 0] > 0)
        if len(yx) == 0:
            return super().get_train_loss_dict(0)
        pick = yx[torch.randint(len(yx), (n,), generator=self._rays_gen)]
        rays = cam.generate_rays(camera_indices=0, coords=pick.float() + 0.5)
        rays.camera_indices = torch.full((n, 1), self._nearest_input(view), dtype=torch.long)
        rays = rays.to(self.device)
        with _no_pose_correction(model):
            outputs = self._model(rays)
        gt = image[pick[:, 0], pick[:, 1]].to(self.device)
        conf = mask[pick[:, 0], pick[:, 1]].to(self.device)  # [n, 1]
        batch = {"image": gt, "indices": torch.cat([rays.camera_indices.cpu(), pick], -1)}
        metrics = model.get_metrics_dict(outputs, batch)
        loss_dict = model.get_loss_dict(outputs, batch, metrics)
        err = (outputs["rgb"] - gt) ** 2 * conf
        loss_dict["rgb_loss"] = weight * err.sum() / (3 * conf.sum().clamp_min(1e-6))
        return outputs, loss_dict, metrics
