"""Densification strategy of the trainer: gsplat's ``DefaultStrategy`` with fixes, and its config.

:class:`StrategyConfig` (alias ``DensifyConfig``) is the strategy's settings; it lives in the train
config as ``TrainConfig.densify`` (also reachable as ``TrainConfig.strategy``), gsplat style, and
:meth:`StrategyConfig.build` makes the strategy object the trainer calls before and after each
backward pass (``step_pre_backward`` / ``step_post_backward``).

The strategy object is a subclass of gsplat 1.5.3's ``DefaultStrategy`` (see :func:`_strategy_class`); it also
runs on gsplat 1.4.0 (the version nerfstudio 1.1.5 pins, see :mod:`sparsevid.nerfstudio`), whose rasterizer gives
radii of shape [C, N] instead of [C, N, 2] and whose private methods used here have the same signatures.
**It overrides gsplat private methods** -- ``_grow_gs`` and ``_update_state`` -- and re-implements
``gsplat.strategy.ops.split`` using gsplat's private ``_update_param_with_optimizer``; these are not
part of gsplat's public API and may change with the gsplat version (written against 1.5.3; the tests
in ``tests/test_gaussians_train.py`` compare the statistics with gsplat's own ``DefaultStrategy``
and check the opacity reset). :class:`MCMCStrategy` is not used: it calls CUDA-only kernels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def _strategy_class():
    """gsplat's :class:`DefaultStrategy` with three changes (imported lazily: gsplat is heavy).

    * The running grad2d/count statistics are accumulated with masked sums instead of
      ``torch.where`` + ``index_add_`` (unpacked mode): same numbers, but no device->host sync
      per step on CUDA.
    * The opacity reset fires every ``reset_every`` steps as intended: gsplat 1.5.3 writes
      ``step % reset_every == 0 & step > 0``, which Python parses as
      ``step % reset_every == (0 & step) > 0`` -- never true -- so it never resets.
    * Split Gaussians are offset with noise from ``self.generator`` (set by the trainer) instead of
      the process-wide torch RNG (gsplat's ``split`` calls ``torch.randn`` without a generator).
    """
    import torch.nn.functional as F
    from gsplat.strategy import DefaultStrategy
    from gsplat.strategy.ops import _update_param_with_optimizer, duplicate, reset_opa
    from gsplat.utils import normalized_quat_to_rotmat

    @torch.no_grad()
    def split(params, optimizers, state, mask: Tensor, generator: torch.Generator | None,
              revised_opacity: bool = False) -> None:
        """gsplat 1.5.3's ``ops.split`` with the noise drawn from ``generator``."""
        device = mask.device
        sel = torch.where(mask)[0]
        rest = torch.where(~mask)[0]
        scales = torch.exp(params["scales"][sel])
        quats = F.normalize(params["quats"][sel], dim=-1)
        rotmats = normalized_quat_to_rotmat(quats)  # [N, 3, 3]
        noise = torch.randn(2, len(scales), 3, device=device, generator=generator)
        samples = torch.einsum("nij,nj,bnj->bni", rotmats, scales, noise)  # [2, N, 3]

        def param_fn(name: str, p: Tensor) -> Tensor:
            repeats = [2] + [1] * (p.dim() - 1)
            if name == "means":
                p_split = (p[sel] + samples).reshape(-1, 3)
            elif name == "scales":
                p_split = torch.log(scales / 1.6).repeat(2, 1)
            elif name == "opacities" and revised_opacity:
                new_opacities = 1.0 - torch.sqrt(1.0 - torch.sigmoid(p[sel]))
                p_split = torch.logit(new_opacities).repeat(repeats)
            else:
                p_split = p[sel].repeat(repeats)
            return torch.nn.Parameter(torch.cat([p[rest], p_split]), requires_grad=p.requires_grad)

        def optimizer_fn(key: str, v: Tensor) -> Tensor:
            v_split = torch.zeros((2 * len(sel), *v.shape[1:]), device=device)
            return torch.cat([v[rest], v_split])

        _update_param_with_optimizer(param_fn, optimizer_fn, params, optimizers)
        for k, v in state.items():
            if isinstance(v, torch.Tensor):
                repeats = [2] + [1] * (v.dim() - 1)
                state[k] = torch.cat((v[rest], v[sel].repeat(repeats)))

    class _Strategy(DefaultStrategy):
        generator: torch.Generator | None = None  # set by the trainer (not a dataclass field)

        # overrides a *private* method of gsplat 1.5.3's DefaultStrategy (same signature and
        # return value as gsplat's); check it when upgrading gsplat
        @torch.no_grad()
        def _grow_gs(self, params, optimizers, state, step):
            """gsplat 1.5.3's ``_grow_gs`` with :func:`split` drawing from ``self.generator``."""
            count = state["count"]
            grads = state["grad2d"] / count.clamp_min(1)
            device = grads.device
            is_grad_high = grads > self.grow_grad2d
            is_small = torch.exp(params["scales"]).max(dim=-1).values <= self.grow_scale3d * state["scene_scale"]
            is_dupli = is_grad_high & is_small
            n_dupli = is_dupli.sum().item()
            is_split = is_grad_high & ~is_small
            if step < self.refine_scale2d_stop_iter:
                is_split |= state["radii"] > self.grow_scale2d
            n_split = is_split.sum().item()
            if n_dupli > 0:
                duplicate(params=params, optimizers=optimizers, state=state, mask=is_dupli)
            is_split = torch.cat([is_split, torch.zeros(n_dupli, dtype=torch.bool, device=device)])
            if n_split > 0:
                split(params, optimizers, state, is_split, self.generator, revised_opacity=self.revised_opacity)
            return n_dupli, n_split

        # overrides a *private* method of gsplat 1.5.3's DefaultStrategy (called by step_post_backward)
        def _update_state(self, params, state, info, packed: bool = False) -> None:
            if packed or self.refine_scale2d_stop_iter > 0:
                return super()._update_state(params, state, info, packed=packed)
            g = info[self.key_for_gradient]
            grads = (g.absgrad if self.absgrad else g.grad).clone()  # [C, N, 2]
            grads[..., 0] *= info["width"] / 2.0 * info["n_cameras"]
            grads[..., 1] *= info["height"] / 2.0 * info["n_cameras"]
            radii = info["radii"]  # [C, N, 2] (gsplat 1.5, our CPU rasterizer) or [C, N] (gsplat 1.4)
            sel = (radii > 0).all(dim=-1) if radii.dim() == 3 else radii > 0  # [C, N]
            n = len(params["means"])
            if state["grad2d"] is None:
                state["grad2d"] = torch.zeros(n, device=grads.device)
            if state["count"] is None:
                state["count"] = torch.zeros(n, device=grads.device)
            state["grad2d"] += torch.where(sel, grads.norm(dim=-1), 0.0).sum(0)
            state["count"] += sel.sum(0).to(state["count"].dtype)

        def step_post_backward(self, params, optimizers, state, step, info, packed=False) -> None:
            if step >= self.refine_stop_iter:
                return
            self._update_state(params, state, info, packed=packed)
            if (step > self.refine_start_iter and step % self.refine_every == 0
                    and step % self.reset_every >= self.pause_refine_after_reset):
                self._grow_gs(params, optimizers, state, step)
                self._prune_gs(params, optimizers, state, step)
                state["grad2d"].zero_()
                state["count"].zero_()
                if state.get("radii") is not None:
                    state["radii"].zero_()
            if step > 0 and step % self.reset_every == 0:
                reset_opa(params=params, optimizers=optimizers, state=state, value=self.prune_opa * 2.0)

    return _Strategy


@dataclass
@dataclass
class StrategyConfig:
    """The densification strategy: gsplat ``DefaultStrategy`` settings (its defaults), given for a
    run of ``TrainConfig.schedule_ref_steps`` steps: shorter runs compress the step counts (see
    :meth:`~sparsevid.gaussians.trainer.TrainConfig.scaled`). Size thresholds are relative to the
    trainer's scene scale. :meth:`build` makes the strategy object (gsplat style: the train config
    holds the strategy, ``TrainConfig.densify`` / ``TrainConfig.strategy``)."""

    prune_opa: float = 0.005  # prune Gaussians whose opacity falls below this
    grow_grad2d: float = 0.0002  # grow Gaussians whose mean image-space position gradient exceeds this
    grow_scale3d: float = 0.01  # ... by cloning when smaller than this (relative scale), else by splitting
    prune_scale3d: float = 0.1  # prune Gaussians larger than this (relative scale)
    refine_start_iter: int = 500  # first step that grows or prunes
    refine_stop_iter: int = 15_000  # no growing or pruning from this step on
    refine_every: int = 100  # steps between refinements
    reset_every: int = 3000  # steps between opacity resets
    absgrad: bool = False  # grow by the absolute gradients (AbsGS; CUDA only)

    def build(self, device: torch.device):
        """The strategy object (our :func:`_strategy_class`) with these settings; ``absgrad`` only
        on CUDA (the CPU rasterizer gives no absolute gradients). The caller sets ``.generator``."""
        return _strategy_class()(
            prune_opa=self.prune_opa, grow_grad2d=self.grow_grad2d, grow_scale3d=self.grow_scale3d,
            prune_scale3d=self.prune_scale3d, refine_start_iter=self.refine_start_iter,
            refine_stop_iter=self.refine_stop_iter, refine_every=self.refine_every,
            reset_every=self.reset_every, absgrad=self.absgrad and device.type == "cuda")


#: the name of earlier versions (``TrainConfig.densify`` keeps its field name: config.yaml, checkpoints)
DensifyConfig = StrategyConfig
