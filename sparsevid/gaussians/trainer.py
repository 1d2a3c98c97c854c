"""Per-scene 3D Gaussian Splatting training loop (same code on CUDA/gsplat and CPU/ours).

One image per step, loss ``weight * (0.8 L1 + 0.2 (1 - SSIM))`` over the view's valid pixels,
one Adam per parameter group (fused on CUDA), densification by gsplat's ``DefaultStrategy`` with
fixes (see :mod:`.strategy`: sync-free statistics, and an opacity reset that fires --
gsplat 1.5.3's never does). :class:`MCMCStrategy` is not used: it calls CUDA-only kernels.

Default length: 2000 steps on CUDA -- the measured optimum for 4 input frames (held-out PSNR
peaks at ~2k steps and declines after, see /work/shared/README.md). 750 steps on CPU: at the
~4-6 steps/s of the CPU rasterizer on the demo's 424x240 canvas that is ~2-3 minutes of training.
Shorter runs compress the step-count settings of the 2000-step recipe (densification start and
cadence, SH degree interval; ``TrainConfig.schedule_ref_steps``) so that they go through the same
phases: a 750-step run densifies from step 188 every 38 steps and raises the SH degree every 375.
``TrainConfig(steps=30000)`` reproduces a vanilla 3DGS run (longer runs keep gsplat's settings).

Learning rates are gsplat's ``simple_trainer`` ones, made for 30k steps: over a few hundred steps
they cannot move colours far (the DC term moves <= ~lr per step), which is why very short runs
(tests) raise ``lr_sh0``/``lr_scales``. Means LR and the size thresholds of densification are
relative to the scene scale, 1.1 x the cameras' spread (gsplat's rule), floored at 5% of the median
SfM point distance for near-coincident cameras.

Determinism: initialisation, view order and densification noise (the offsets of split Gaussians)
come from ``torch.Generator`` objects the trainer owns, seeded by ``cfg.seed`` and stored in
checkpoints; the process-wide torch RNG is neither read nor changed. Same seed -> same parameters on
CPU, whatever else the process draws, and a resumed run continues bitwise like an uninterrupted one.

The module is the loop (:class:`Trainer`, :class:`TrainConfig`, interruption); its parts live beside
it: the densification strategy in :mod:`.strategy`, the view type and view sampling in :mod:`.views`,
the checkpoint format and save/restore in :mod:`.checkpoint`. Their public names are importable from
here too.

Checkpoints (:data:`CHECKPOINT_NAME`) are safetensors files with the non-tensor state as JSON
(:mod:`sparsevid.gaussians.checkpoint`): loading one runs no code. Ctrl-C (SIGINT) and SIGTERM during
:meth:`Trainer.train` finish the current step, save a checkpoint at that step (when the trainer has a
``run_dir``) and raise :class:`TrainingInterrupted` (a ``KeyboardInterrupt``); a second Ctrl-C stops at
once.

CUDA: no per-step host syncs in the loop (views uploaded once, loss statistics accumulated on the
device and read every ``log_every`` steps, densification statistics without ``nonzero``); gsplat's
rasterizer and the refinement steps keep their own syncs.
"""
from __future__ import annotations

import dataclasses
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from sparsevid import log
from sparsevid.devices import resolve_device
from sparsevid.errors import SparsevidError
from sparsevid.geometry import camera_extent
from sparsevid.gaussians.checkpoint import (CHECKPOINT_NAME, LEGACY_CHECKPOINT_NAME, find_checkpoint,
                                            restore_trainer, save_trainer, trainer_state)
from sparsevid.gaussians.losses import make_loss_fn, psnr_from_mse
from sparsevid.gaussians.model import (PARAM_NAMES, GaussianModel, InitConfig, init_params, make_parameters,
                                       random_frustum_points)
from sparsevid.gaussians.rasterize import rasterize
from sparsevid.gaussians.strategy import DensifyConfig, StrategyConfig, _strategy_class
from sparsevid.gaussians.views import (TrainView, ViewSampler, downscaled, view_from_dict, view_tensors,
                                      views_from_scene)

__all__ = ["CHECKPOINT_NAME", "LEGACY_CHECKPOINT_NAME", "DensifyConfig", "StrategyConfig", "TrainConfig",
           "TrainView", "Trainer", "TrainingInterrupted", "ViewSampler", "find_checkpoint", "views_from_scene",
           "_strategy_class"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by SIGINT/SIGTERM after a checkpoint at ``step`` was saved (``checkpoint``:
    its path, None without a run folder)."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        where = f"; checkpoint at step {step} saved to {checkpoint}" if checkpoint else ""
        super().__init__(f"training interrupted by {signal.Signals(signum).name} at step {step}{where}")



@dataclass
class TrainConfig:
    """Training settings. ``steps=None`` -> 2000 on CUDA, 750 on CPU (see module doc)."""

    steps: int | None = None  # training steps; None = 2000 on CUDA, 750 on CPU (30000 = vanilla 3DGS)
    seed: int = 0  # seeds the trainer's own generators (`run` sets it from RunConfig.seed)
    # share of steps that train on pseudo views once the progressive fixer has added some (the
    # rest train on the real inputs, which would otherwise be starved by dozens of pseudo views)
    pseudo_fraction: float = 0.5
    # learning rates (gsplat simple_trainer); means LR x scene extent, decayed to x0.01 at the end
    lr_means: float = 1.6e-4
    lr_means_final_factor: float = 0.01  # the means LR decays to this factor at the last step
    lr_quats: float = 1e-3  # learning rate of the rotations
    lr_scales: float = 5e-3  # learning rate of the log scales
    lr_opacities: float = 5e-2  # learning rate of the opacity logits
    lr_sh0: float = 2.5e-3  # learning rate of the DC colour
    lr_shN: float = 2.5e-3 / 20  # learning rate of the higher SH coefficients
    ssim_weight: float = 0.2  # loss = (1 - w) L1 + w (1 - SSIM)
    sh_degree: int = 3  # the highest SH degree trained
    sh_degree_interval: int = 1000  # raise the active SH degree every N steps (of a reference-length run)
    # the densification strategy (gsplat style: the config holds it; see also the `strategy` property)
    densify: StrategyConfig = field(default_factory=StrategyConfig)
    # The step counts above (densification cadence, SH interval) are tuned for a run of this many
    # steps (the measured optimum for 4 input views); a shorter run compresses them by
    # steps / schedule_ref_steps so that it goes through the same phases. Longer runs keep them.
    schedule_ref_steps: int = 2000
    max_gaussians: int = 1_000_000  # after a refinement, prune the lowest opacities beyond this
    init: InitConfig = field(default_factory=InitConfig)
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)  # RGB behind the Gaussians
    antialiased: bool = False  # gsplat's "antialiased" rasterize mode (else "classic")
    # CUDA: torch.compile the loss (see losses.make_loss_fn); off by default: in a new process the compile
    # (even from a warm cache) costs more than it saves over 2000 steps (H200, BENCHMARKS.md "Time to video")
    compile_loss: bool = False
    # coarse-to-fine: the first coarse_fraction of the steps train on the views downscaled by
    # coarse_scale (4x fewer pixels at 0.5), where the still few and large Gaussians cost the CPU
    # rasterizer the most per pixel; 0 = every step at full resolution. The CPU profile sets it
    # (RunConfig.cpu_coarse_fraction); see BENCHMARKS.md, "Time to video", session 3.
    coarse_fraction: float = 0.0
    coarse_scale: float = 0.5  # the views' scale in the first coarse_fraction of the steps
    # steps between checkpoints; 0 = only at the end (when run_dir is set); None = auto: every
    # checkpoint_seconds of training (a checkpoint of ~0.5M Gaussians + Adam state is ~0.3 GB: a
    # 10-second CUDA run saves only at the end, a 5-minute CPU run every minute)
    checkpoint_every: int | None = None
    checkpoint_seconds: float = 60.0  # the auto checkpoint interval, in seconds of training
    # camera refinement: every input view's pose but the first gets a 6-dof correction (a twist: rotation in
    # radians, translation in units of the scene scale) learnt with the Gaussians by its own Adam at this rate;
    # 0 = off. The first view fixes the frame, so the SfM points and the path stay where they were. See
    # Trainer.refined_c2ws and BENCHMARKS.md, session 23.
    pose_lr: float = 0.0
    log_every: int = 0  # steps between progress updates; 0 = auto (100 cuda, 10 cpu)
    quiet: bool = False  # no progress display

    @property
    def strategy(self) -> StrategyConfig:
        """The densification strategy's config (the field ``densify``: the name config.yaml files,
        checkpoints and command-line flags use). ``cfg.strategy.build(device)`` makes the object."""
        return self.densify

    def resolved_steps(self, device: torch.device) -> int:
        if self.steps is not None:
            return int(self.steps)
        return 2000 if device.type == "cuda" else 750

    def scaled(self, total_steps: int) -> tuple[StrategyConfig, int]:
        """(densification settings, SH degree interval) for a run of ``total_steps`` steps:
        step counts x ``min(1, total_steps / schedule_ref_steps)``."""
        f = min(1.0, total_steps / max(1, self.schedule_ref_steps)) if self.schedule_ref_steps > 0 else 1.0
        d = self.densify

        def sc(n: int) -> int:
            return max(1, int(round(n * f)))

        dens = dataclasses.replace(d, refine_start_iter=sc(d.refine_start_iter),
                                   refine_stop_iter=sc(d.refine_stop_iter),
                                   refine_every=sc(d.refine_every), reset_every=sc(d.reset_every))
        return dens, sc(self.sh_degree_interval)



_view_from_dict = view_from_dict  # earlier name


def twist_exp(twist: Tensor, translation_unit: float = 1.0) -> Tensor:
    """[4, 4] rigid transform of a twist [6] (rotation vector in radians, then translation in units of
    ``translation_unit``): the matrix exponential of its se(3) matrix (``torch.linalg.matrix_exp``, differentiable)."""
    w, v = twist[:3], twist[3:] * translation_unit
    z = torch.zeros((), dtype=twist.dtype, device=twist.device)
    m = torch.stack([torch.stack([z, -w[2], w[1], v[0]]), torch.stack([w[2], z, -w[0], v[1]]),
                     torch.stack([-w[1], w[0], z, v[2]]), torch.stack([z, z, z, z])])
    return torch.linalg.matrix_exp(m)


def _config_from_dict(d: dict) -> TrainConfig:
    d = dict(d)
    d["densify"] = StrategyConfig(**d["densify"])
    d["init"] = InitConfig(**d["init"])
    d["background"] = tuple(d["background"])
    return TrainConfig(**d)


class Trainer:
    """Train Gaussians on posed views; see the module doc.

    Args:
        cfg: :class:`TrainConfig`.
        views: training views (all the same canvas size is not required).
        points: [P, 3] SfM points or None; colors: [P, 3] uint8 or None.
        device: "auto" | "cuda" | "cpu" or a torch.device.
        run_dir: where periodic checkpoints go (None = no automatic checkpoints).
    """

    def __init__(self, cfg: TrainConfig, views: list[TrainView], points: np.ndarray | None = None,
                 colors: np.ndarray | None = None, device: str | torch.device = "auto",
                 run_dir: str | Path | None = None, _restore: dict | None = None):
        if not views:
            raise SparsevidError("no training views", fix="pass at least one posed view")
        from sparsevid.checks import check_train_config

        check_train_config(cfg)  # a typo is an error here, not a training that does nothing
        self.cfg = cfg
        self.device = resolve_device(device)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.views: list[TrainView] = list(views)
        self.total_steps = (int(_restore["total_steps"]) if _restore is not None
                            else cfg.resolved_steps(self.device))
        self.step = 0
        self._sampler = ViewSampler(cfg.seed)  # view order (its own generator)
        self._gpu_views: dict[tuple[int, float], tuple[Tensor, ...]] = {}
        self._bg = torch.tensor(cfg.background, dtype=torch.float32, device=self.device)
        if _restore is None:
            raw = self._init_raw(points, colors)
        else:
            raw = {k: v.to(self.device) for k, v in _restore["params"].items()}
        self.scene_scale = (_restore["scene_scale"] if _restore is not None
                            else self._scene_extent(points))
        self.params = make_parameters(raw)
        self.optimizers = self._make_optimizers()
        # camera refinement (cfg.pose_lr): one twist per input view given at construction
        self._pose_slot = {i: k for k, i in enumerate(i for i, v in enumerate(self.views) if v.kind == "input")}
        self.pose_deltas: Tensor | None = None
        self.pose_optimizer: torch.optim.Optimizer | None = None
        if cfg.pose_lr > 0:
            d = (_restore["pose_deltas"].to(self.device) if _restore is not None and "pose_deltas" in _restore
                 else torch.zeros(len(self._pose_slot), 6))
            self.pose_deltas = d.to(self.device, torch.float32).requires_grad_(True)
            self.pose_optimizer = torch.optim.Adam([self.pose_deltas], lr=cfg.pose_lr, eps=1e-15)
        d, self.sh_interval = cfg.scaled(self.total_steps)
        self.strategy = d.build(self.device)  # the densification strategy (see .strategy)
        self.strategy.check_sanity(self.params, self.optimizers)
        self.strategy_state = self.strategy.initialize_state(scene_scale=self.scene_scale)
        # densification noise: the trainer's own stream on its device (saved in checkpoints)
        self._noise_gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.strategy.generator = self._noise_gen
        self._stop_signal: int | None = None
        self.history: list[dict] = []
        self._loss_fn = make_loss_fn(self.device, cfg.compile_loss)

    # ---- setup -------------------------------------------------------------------------
    def _scene_extent(self, points: np.ndarray | None) -> float:
        """gsplat's scene scale (camera spread x 1.1), floored at 5% of the median point
        distance so that near-coincident cameras (a short forward walk) keep sane LRs/thresholds."""
        c2ws = np.stack([v.c2w for v in self.views if v.kind == "input"] or [v.c2w for v in self.views])
        ext = camera_extent(c2ws)
        if points is not None and len(points) > 0:
            d = np.linalg.norm(np.asarray(points) - c2ws[:, :3, 3].mean(0), axis=1)
            ext = max(ext, 0.05 * float(np.median(d)))
        return float(ext if ext > 1e-9 else 1.0)

    def _init_raw(self, points, colors) -> dict[str, Tensor]:
        rng = np.random.default_rng(self.cfg.seed)
        icfg = dataclasses.replace(self.cfg.init, sh_degree=self.cfg.sh_degree)
        if points is None or len(points) < icfg.min_points:
            have = 0 if points is None else len(points)
            log.info(f"{have} SfM points (< {icfg.min_points}): initialising "
                     f"{icfg.random_points} random points inside the camera frusta", dim=True)
            points, colors = random_frustum_points(self.views, icfg.random_points, rng, points)
        elif colors is None:
            colors = np.full((len(points), 3), 128, np.uint8)
        return init_params(points, colors, icfg, self.cfg.seed, self.device)

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        lrs = {"means": c.lr_means * self.scene_scale, "quats": c.lr_quats, "scales": c.lr_scales,
               "opacities": c.lr_opacities, "sh0": c.lr_sh0, "shN": c.lr_shN}
        kw = {"fused": True} if self.device.type == "cuda" else {"foreach": False}
        return {k: torch.optim.Adam([{"params": self.params[k], "lr": lrs[k], "name": k}],
                                    eps=1e-15, **kw) for k in PARAM_NAMES}

    # ---- views -------------------------------------------------------------------------
    def add_views(self, views: list[TrainView]) -> None:
        """Add (pseudo-)views; earlier views are kept. They join the sampling from the next epoch."""
        self.views.extend(views)

    def _next_view(self) -> int:
        """Index of the next training view (see :meth:`ViewSampler.next`)."""
        return self._sampler.next(self.views, self.cfg.pseudo_fraction)

    def _view_tensors(self, i: int, scale: float = 1.0) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(image [1,H,W,3], mask [1,H,W,1], viewmat [1,4,4], K [1,3,3], weight [1]) of view ``i``
        at ``scale`` x its resolution (:func:`downscaled`) on the device; made and uploaded once per
        view and scale, and cached (no per-step host->device copies)."""
        if (i, scale) not in self._gpu_views:
            self._gpu_views[(i, scale)] = view_tensors(downscaled(self.views[i], scale), self.device)
        return self._gpu_views[(i, scale)]

    def pose_correction(self, slot: int) -> Tensor:
        """[4, 4] the correction that input view ``slot`` (0-based among the inputs) applies to its
        world-to-camera matrix (``viewmat' = E @ viewmat``): the exponential of its twist, identity for the
        first input and when refinement is off."""
        if self.pose_deltas is None or slot == 0:
            return torch.eye(4, device=self.device)
        return twist_exp(self.pose_deltas[slot], self.scene_scale)

    @torch.no_grad()
    def refined_c2ws(self) -> np.ndarray:
        """[N, 4, 4] float64 camera-to-world of the input views (in view order) with their learnt
        corrections (``c2w @ inv(E)``); the given poses when refinement is off."""
        out = []
        for i, slot in self._pose_slot.items():
            E = self.pose_correction(slot).double().cpu().numpy()
            out.append(np.asarray(self.views[i].c2w, np.float64) @ np.linalg.inv(E))
        return np.stack(out)

    def view_scale(self, step: int | None = None) -> float:
        """The resolution scale of the views at ``step`` (default: the current one): ``coarse_scale``
        for the first ``coarse_fraction`` of the total steps, else 1."""
        s = self.step if step is None else step
        if self.cfg.coarse_fraction > 0 and s < self.cfg.coarse_fraction * self.total_steps:
            return float(self.cfg.coarse_scale)
        return 1.0

    # ---- model -------------------------------------------------------------------------
    @property
    def model(self) -> GaussianModel:
        return GaussianModel(self.params)

    @property
    def num_gaussians(self) -> int:
        return int(self.params["means"].shape[0])

    def active_sh_degree(self, step: int | None = None) -> int:
        s = self.step if step is None else step
        return min(self.cfg.sh_degree, s // max(1, self.sh_interval))

    def _rasterize(self, viewmats: Tensor, Ks: Tensor, width: int, height: int, sh_degree: int,
                   render_mode: str = "RGB"):
        a = self.model.activated()
        bgs = self._bg[None].expand(viewmats.shape[0], 3)
        return rasterize(a["means"], a["quats"], a["scales"], a["opacities"], a["colors"],
                         viewmats, Ks, width, height, sh_degree=sh_degree, backgrounds=bgs,
                         render_mode=render_mode,
                         rasterize_mode="antialiased" if self.cfg.antialiased else "classic",
                         backend="cuda" if self.device.type == "cuda" else "cpu",
                         absgrad=self.strategy.absgrad)

    # ---- training ----------------------------------------------------------------------
    def _set_lr(self, step: int) -> None:
        gamma = self.cfg.lr_means_final_factor ** (min(step, self.total_steps) / max(1, self.total_steps))
        for g in self.optimizers["means"].param_groups:
            g["lr"] = self.cfg.lr_means * self.scene_scale * gamma

    def train_step(self) -> tuple[Tensor, Tensor]:
        """One optimisation step; returns detached (loss, mse) tensors (no host sync)."""
        i = self._next_view()
        img, mask, viewmat, K, weight = self._view_tensors(i, self.view_scale())
        if self.pose_deltas is not None and i in self._pose_slot:
            viewmat = self.pose_correction(self._pose_slot[i])[None] @ viewmat
        self._set_lr(self.step)
        render, _, info = self._rasterize(viewmat, K, img.shape[2], img.shape[1], self.active_sh_degree())
        self.strategy.step_pre_backward(self.params, self.optimizers, self.strategy_state, self.step, info)
        loss, _, mse = self._loss_fn(render, img, mask, weight, self.cfg.ssim_weight)
        loss.backward()
        self.strategy.step_post_backward(self.params, self.optimizers, self.strategy_state,
                                         self.step, info, packed=False)
        for opt in self.optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        if self.pose_optimizer is not None:
            self.pose_optimizer.step()
            self.pose_optimizer.zero_grad(set_to_none=True)
        if self.num_gaussians > self.cfg.max_gaussians:
            self._cap_gaussians()
        self.step += 1
        return loss.detach(), mse

    def may_grow(self) -> bool:
        """Whether the densification may still add Gaussians (before its last refining step, under the cap)."""
        stop = getattr(self.strategy, "refine_stop_iter", None)
        return stop is not None and self.step < stop and self.num_gaussians < self.cfg.max_gaussians

    @torch.no_grad()
    def _cap_gaussians(self) -> None:
        from gsplat.strategy.ops import remove

        n_drop = self.num_gaussians - self.cfg.max_gaussians
        order = torch.argsort(self.params["opacities"])
        mask = torch.zeros(self.num_gaussians, dtype=torch.bool, device=self.device)
        mask[order[:n_drop]] = True
        remove(self.params, self.optimizers, self.strategy_state, mask)

    def train(self, num_steps: int | None = None,
              hooks: dict[int, Callable[["Trainer"], None]] | None = None) -> dict:
        """Train ``num_steps`` more steps (None: up to the configured total). ``hooks[k](self)``
        runs when ``self.step == k`` (after k steps, before step k+1), e.g. to add pseudo-views;
        a hook at ``total_steps`` runs at the end.

        SIGINT (Ctrl-C) or SIGTERM: the current step (or hook) finishes, a checkpoint at that step
        is saved (with a ``run_dir``) and :class:`TrainingInterrupted` is raised; a second SIGINT
        raises ``KeyboardInterrupt`` at once. (Signals are handled so only in the main thread.)

        Returns a summary: steps, seconds, steps_per_s, final loss/PSNR, gaussians."""
        target = self.total_steps if num_steps is None else self.step + int(num_steps)
        hooks = dict(hooks or {})
        log_every = self.cfg.log_every or (100 if self.device.type == "cuda" else 10)
        ck_every = self.cfg.checkpoint_every
        t0, s0 = time.perf_counter(), self.step
        last_save = t0
        t_log, s_log = t0, self.step  # the latest log interval: its speed gives the time left
        loss_acc = mse_acc = None
        n_acc = 0
        last = {"loss": float("nan"), "psnr": float("nan")}
        quiet = log.quieted(log.is_quiet() or self.cfg.quiet)  # this training only, not the process
        quiet.__enter__()
        self._stop_signal = None
        try:
            previous = self._install_signal_handlers()
        except BaseException:
            quiet.__exit__(None, None, None)
            raise
        try:
            with log.progress() as bar:
                task = bar.add_task("training", total=target, completed=self.step,
                                    status="")
                while self.step < target:
                    if self.step in hooks:
                        th = time.perf_counter()
                        hooks[self.step](self)
                        t_log += time.perf_counter() - th  # a progressive round is not a step's cost
                    loss, mse = self.train_step()
                    loss_acc = loss if loss_acc is None else loss_acc + loss
                    mse_acc = mse if mse_acc is None else mse_acc + mse
                    n_acc += 1
                    if self.step % log_every == 0 or self.step == target:
                        last = {"loss": float(loss_acc) / n_acc, "psnr": psnr_from_mse(float(mse_acc) / n_acc)}
                        now = time.perf_counter()
                        rate = (self.step - s0) / max(now - t0, 1e-9)
                        self.history.append({"step": self.step, **last, "gaussians": self.num_gaussians})
                        # the steps left at the latest interval's speed: each step costs more as the Gaussians
                        # grow, so while they can it is a lower bound (an average over the run said ~35 s left
                        # on the shared clip's CPU run with 160 s to go)
                        # (none after the first interval, which holds the warm-up: 639 s said for 200 s)
                        left = (None if s_log == s0 else
                                (target - self.step) * (now - t_log) / max(1, self.step - s_log))
                        bar.update(task, completed=self.step, left=left, at_least=self.may_grow(),
                                   status=f"loss {last['loss']:.4f}  PSNR {last['psnr']:.2f}  "
                                          f"{self.num_gaussians} gs  {rate:.1f} it/s")
                        t_log, s_log = now, self.step
                        loss_acc = mse_acc = None
                        n_acc = 0
                    if self._stop_signal is not None:
                        self._stop(self._stop_signal)
                    if self.run_dir is not None and self.step < target and (
                            self.step % ck_every == 0 if ck_every else
                            ck_every is None and time.perf_counter() - last_save >= self.cfg.checkpoint_seconds):
                        th = time.perf_counter()
                        self._checkpoint()
                        last_save = time.perf_counter()
                        t_log += last_save - th  # nor is a checkpoint
                if self.step in hooks and self.step == target == self.total_steps:
                    hooks[self.step](self)  # a hook at the very end (else: next call)
                if self._stop_signal is not None:
                    self._stop(self._stop_signal)
        finally:
            self._restore_signal_handlers(previous)
            quiet.__exit__(None, None, None)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if self.run_dir is not None:
            self._checkpoint()
        return {"steps": self.step - s0, "seconds": dt, "steps_per_s": (self.step - s0) / max(dt, 1e-9),
                **last, "gaussians": self.num_gaussians}

    # ---- interruption ------------------------------------------------------------------
    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def _install_signal_handlers(self) -> dict | None:
        """SIGINT/SIGTERM -> stop after the current step (see :meth:`train`); None off the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            if self._stop_signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C: stop now
            self._stop_signal = signum
            log.warn(f"{signal.Signals(signum).name}: finishing step {self.step + 1} and saving a checkpoint" +
                     (" (Ctrl-C again to stop at once, without one)" if signum == signal.SIGINT else ""),
                     record=False)  # not a warning about the result: run.json's list is for those

        previous = {}
        for s in self._SIGNALS:
            previous[s] = signal.getsignal(s)
            signal.signal(s, handler)
        return previous

    def _restore_signal_handlers(self, previous: dict | None) -> None:
        for s, h in (previous or {}).items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)

    def _stop(self, signum: int) -> None:
        path = None
        if self.run_dir is not None:
            path = self._checkpoint()
        raise TrainingInterrupted(signum, self.step, path)

    # ---- rendering ---------------------------------------------------------------------
    @torch.no_grad()
    def render(self, c2ws, Ks, width: int, height: int, chunk: int = 4) -> dict[str, Tensor]:
        """Render cameras c2ws [B, 4, 4] (OpenCV axes), Ks [B, 3, 3] at width x height.

        Returns dict(rgb [B, H, W, 3] in 0..1, depth [B, H, W, 1] expected z-depth, alpha [B, H, W, 1])
        on the trainer's device."""
        c2ws = torch.as_tensor(np.asarray(c2ws), dtype=torch.float32).reshape(-1, 4, 4).to(self.device)
        Ks = torch.as_tensor(np.asarray(Ks), dtype=torch.float32).reshape(-1, 3, 3).to(self.device)
        rgbs, depths, alphas = [], [], []
        for s in range(0, c2ws.shape[0], chunk):
            vm = torch.linalg.inv(c2ws[s:s + chunk])
            out, alpha, _ = self._rasterize(vm, Ks[s:s + chunk], width, height,
                                            self.active_sh_degree(), render_mode="RGB+ED")
            rgbs.append(out[..., :3].clamp(0, 1))
            depths.append(out[..., 3:4])
            alphas.append(alpha)
        return {"rgb": torch.cat(rgbs), "depth": torch.cat(depths), "alpha": torch.cat(alphas)}

    # ---- checkpoints (format and restore: see .checkpoint) ----------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume, as tensors, arrays and plain values (no objects)."""
        return trainer_state(self)

    def _checkpoint(self) -> Path:
        """The periodic checkpoint into ``run_dir``, which must still be there: a folder deleted or moved during
        training is a one-line error, not made again (with none of the run's other files)."""
        if not self.run_dir.is_dir():
            raise SparsevidError("the training folder was deleted or moved during training", path=self.run_dir,
                                 fix="run the command again")
        return self.save_checkpoint(self.run_dir / CHECKPOINT_NAME)

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write everything needed to resume (atomic; safetensors + JSON, see :mod:`.checkpoint`).

        Raises:
            SparsevidError: the file cannot be written (disk full, read-only, ...), as one line.
        """
        return save_trainer(self, path)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto",
                        run_dir: str | Path | None = None, steps: int | None = None) -> "Trainer":
        """Rebuild a trainer exactly as it was saved; ``train()`` then continues the run.
        ``path`` may be a run folder holding :data:`CHECKPOINT_NAME`. No code is loaded: an old
        pickled checkpoint is refused with a one-line error (see :mod:`.checkpoint`).
        ``steps``: a new total length, set in the config before the trainer is built, so that the
        densification and SH schedule are those of a run of that length (None: as saved)."""
        return restore_trainer(cls, path, device=device, run_dir=run_dir, steps=steps)
