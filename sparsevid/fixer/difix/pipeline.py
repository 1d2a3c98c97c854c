"""One-step Difix inference: images in, fixed images out.

For each sample the target view and its ``R`` reference views (``V = 1 + R``) go through::

    z   = mean(VAE-encode(x)) * scaling_factor           x in [-1, 1], [B*V, 3, H, W] laid out (b v)
    eps = UNet(z, t=199, "remove degradation")           references join the target in attn1 (difix_ref)
    x0  = (z - sqrt(1 - abar_t) * eps) / sqrt(abar_t)    DDPM scaled-linear schedule from scheduler/
    out = VAE-decode(x0[target] / scaling_factor, skips of the target's encoder pass)

No noise is added. Images keep their aspect ratio: they are padded (reflect) to a multiple of 8
and cropped back.
"""
from __future__ import annotations

import contextlib
import inspect
import os
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F

from sparsevid import log
from sparsevid.errors import SparsevidError
from sparsevid.fixer.difix.attention import ViewLayout, install_reference_attention, install_wide_head_attention
from sparsevid.fixer.difix.prompt import DEFAULT_PROMPT, prompt_embedding
from sparsevid.fixer.difix.weights import (REPO_DIFIX, REPO_DIFIX_REF, check_layout, load_safetensors,
                                           looks_like_repo_id, merge_lora, read_json,
                                           rename_deprecated_attention, resolve_weights, safetensors_shapes)

DEFAULT_TIMESTEP = 199


def ddpm_alphas_cumprod(cfg: dict) -> torch.Tensor:
    """[T] float64 cumulative alphas of a DDPM scheduler config (``scaled_linear`` or ``linear``)."""
    n = int(cfg.get("num_train_timesteps", 1000))
    b0, b1 = float(cfg.get("beta_start", 0.00085)), float(cfg.get("beta_end", 0.012))
    kind = cfg.get("beta_schedule", "scaled_linear")
    if cfg.get("trained_betas") is not None:
        betas = torch.tensor(cfg["trained_betas"], dtype=torch.float64)
    elif kind == "scaled_linear":
        betas = torch.linspace(b0 ** 0.5, b1 ** 0.5, n, dtype=torch.float64) ** 2
    elif kind == "linear":
        betas = torch.linspace(b0, b1, n, dtype=torch.float64)
    else:
        raise SparsevidError(f"unsupported beta_schedule {kind!r} in the Difix scheduler config",
                             fix="use the published nvidia/difix scheduler/scheduler_config.json")
    return torch.cumprod(1.0 - betas, dim=0)


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> torch.Tensor:
    """[N, C, H, W] -> [N, C, H', W'] with H', W' the next multiples of ``multiple`` (bottom/right
    padding; ``reflect`` falls back to ``replicate`` where the image is too small to reflect)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def detect_reference(folder: Path, name: str = "") -> bool:
    """Whether the weights are ``difix_ref`` (multi-view UNet): a custom ``unet/unet_2d_condition.py``,
    a non-diffusers UNet class in ``model_index.json``, or "ref" in the repo/folder name."""
    if (folder / "unet" / "unet_2d_condition.py").is_file():
        return True
    idx = folder / "model_index.json"
    if idx.is_file():
        entry = read_json(idx).get("unet")
        if isinstance(entry, list) and entry and entry[0] not in ("diffusers", None):
            return True
    return "difix_ref" in name.lower() or "difix_ref" in folder.name.lower()


def _init_kwargs(cls, cfg: dict) -> dict:
    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in cfg.items() if k in params and k != "self"}


def _assign(module: torch.nn.Module, sd: dict[str, torch.Tensor], what: str, folder: Path) -> None:
    """Load ``sd`` into a meta-device ``module`` (strict), with a clear error on mismatch."""
    try:
        res = module.load_state_dict(sd, strict=False, assign=True)
    except RuntimeError as e:  # a tensor whose shape is not the config's
        first = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line), str(e)[:160])
        raise SparsevidError(f"Difix {what} weights do not match its config ({first})", path=folder,
                             fix="re-download the weights (hf download nvidia/difix) with their own config.json"
                             ) from None
    if res.missing_keys or res.unexpected_keys:
        miss = ", ".join(res.missing_keys[:4]) + (" ..." if len(res.missing_keys) > 4 else "")
        extra = ", ".join(res.unexpected_keys[:4]) + (" ..." if len(res.unexpected_keys) > 4 else "")
        raise SparsevidError(f"Difix {what} weights do not match its config "
                             f"({len(res.missing_keys)} missing: {miss or '-'}; "
                             f"{len(res.unexpected_keys)} unexpected: {extra or '-'})", path=folder,
                             fix="re-download the weights (hf download nvidia/difix)")
    left = [n for n, t in list(module.named_parameters()) + list(module.named_buffers()) if t.is_meta]
    if left:
        raise SparsevidError(f"Difix {what}: tensors without weights: {', '.join(left[:4])}", path=folder)


def _build_unet(folder: Path):
    """The UNet of ``unet/config.json`` on the meta device (no memory)."""
    from sparsevid.fixer.difix._deps import diffusers_unet_cls

    cls = diffusers_unet_cls()
    cfg = read_json(folder / "unet" / "config.json")
    try:
        with torch.device("meta"):
            return cls.from_config(_init_kwargs(cls, cfg))
    except Exception as e:
        raise SparsevidError(f"cannot build the Difix UNet from its config: {str(e).strip()[:160]}",
                             path=folder / "unet" / "config.json",
                             fix="re-download the weights (hf download nvidia/difix)") from None


def _vae_config(folder: Path, lora_alpha: float | None = None):
    from sparsevid.fixer.difix.vae import SkipVAEConfig

    try:
        cfg = SkipVAEConfig.from_dict(read_json(folder / "vae" / "config.json"))
    except SparsevidError:
        raise
    except Exception as e:
        raise SparsevidError(f"cannot read the Difix VAE config: {str(e).strip()[:160]}",
                             path=folder / "vae" / "config.json",
                             fix="re-download the weights (hf download nvidia/difix)") from None
    if lora_alpha is not None:
        cfg.lora_alpha = lora_alpha
    return cfg


def _match_shapes(module: torch.nn.Module, shapes: dict[str, tuple[int, ...]], what: str, folder: Path) -> None:
    """The weights' tensor names and shapes (``shapes``) are the ones ``module`` (built from the config) has."""
    want = {n: tuple(t.shape) for n, t in module.state_dict().items()}
    missing, extra = sorted(set(want) - set(shapes)), sorted(set(shapes) - set(want))
    if missing or extra:
        raise SparsevidError(f"Difix {what} weights do not match its config ({len(missing)} missing: "
                             f"{', '.join(missing[:3]) or '-'}; {len(extra)} unexpected: {', '.join(extra[:3]) or '-'})",
                             path=folder, fix="re-download the weights (hf download nvidia/difix)")
    for n, shape in want.items():
        if shapes[n] != shape:
            raise SparsevidError(f"Difix {what} weights do not match its config ({n} is {list(shapes[n])} in the "
                                 f"weights, {list(shape)} by config.json)", path=folder,
                                 fix="re-download the weights (hf download nvidia/difix) with their own config.json")


def check_weights(folder: Path) -> None:
    """Before any work: ``folder``'s configs parse and its weight files are whole, with the tensor names and shapes
    the configs build (a config that does not match its weights, a truncated file, UNet weights in ``vae/``, a VAE
    without Difix's skip convolutions), read from the safetensors headers alone; the models are built on the meta
    device. What :func:`load_unet` and :func:`load_vae` would refuse after minutes of poses and training is refused
    here, in a second."""
    _match_shapes(_build_unet(folder), safetensors_shapes(folder / "unet"), "UNet", folder / "unet")
    cfg = _vae_config(folder)
    shapes = rename_deprecated_attention({k.replace(".base_layer.", "."): v for k, v in
                                          safetensors_shapes(folder / "vae").items() if ".lora_" not in k})
    _match_shapes(_empty_vae(cfg, shapes, folder), shapes, "VAE", folder / "vae")


def _empty_vae(cfg, names, folder: Path):
    """The skip VAE of ``cfg`` on the meta device, once the weights' tensor ``names`` are known to hold Difix's skip
    convolutions (unless the config ignores them)."""
    from sparsevid.fixer.difix.vae import SkipVAE

    if not cfg.ignore_skip and "decoder.skip_conv_1.weight" not in names:
        raise SparsevidError("the VAE weights have no skip convolutions (decoder.skip_conv_1..4): not a Difix VAE",
                             path=folder / "vae", fix="use the nvidia/difix or nvidia/difix_ref weights")
    with torch.device("meta"):
        return SkipVAE(cfg)


def schedule_length(folder: Path) -> int:
    """The number of timesteps of ``folder``'s DDPM scheduler (1000 without a scheduler config)."""
    path = folder / "scheduler" / "scheduler_config.json"
    return int(read_json(path).get("num_train_timesteps", 1000)) if path.is_file() else 1000


def load_unet(folder: Path):
    """The UNet (stock diffusers ``UNet2DConditionModel`` built from ``unet/config.json``), fp32, CPU."""
    unet = _build_unet(folder)
    _assign(unet, load_safetensors(folder / "unet"), "UNet", folder / "unet")
    return unet.float().eval().requires_grad_(False)


def load_vae(folder: Path, lora_alpha: float | None = None):
    """The skip VAE with its decoder LoRA merged (``W0 + alpha/r * B@A``), fp32, CPU."""
    cfg = _vae_config(folder, lora_alpha)
    sd = rename_deprecated_attention(load_safetensors(folder / "vae"))
    try:
        sd, merged = merge_lora(sd, "vae_skip", alpha=cfg.effective_lora_alpha, rank=cfg.lora_rank)
    except ValueError as e:
        raise SparsevidError(f"bad LoRA in the Difix VAE weights: {e}", path=folder / "vae",
                             fix="re-download the weights (hf download nvidia/difix)") from e
    if not merged:
        log.warn(f"difix: {folder / 'vae'} has no 'vae_skip' LoRA; using its weights as they are")
    vae = _empty_vae(cfg, sd, folder)
    _assign(vae, sd, "VAE", folder / "vae")
    return vae.float().eval().requires_grad_(False)


class DifixPipeline:
    """Difix / Difix-ref one-step image fixer.

    Args:
        unet: diffusers ``UNet2DConditionModel``.
        vae: :class:`~sparsevid.fixer.difix.vae.SkipVAE` (LoRA merged).
        prompt_embeds: [1, T, D] embedding of the prompt.
        alphas_cumprod: [num_train_timesteps] of the DDPM schedule.
        timestep: the single denoising timestep (199).
        prediction_type: "epsilon", "v_prediction" or "sample" (from the scheduler config).
        reference_attention: install joint reference-view self-attention (difix_ref).
        pad_multiple, pad_mode: padding of inputs (8 = the VAE's factor; reflect or replicate).
        sample_posterior: sample the VAE posterior (as diffusers' default) instead of its mean.
    """

    def __init__(self, unet, vae, prompt_embeds: torch.Tensor, alphas_cumprod: torch.Tensor,
                 timestep: int = DEFAULT_TIMESTEP, prediction_type: str = "epsilon",
                 reference_attention: bool = False, pad_multiple: int = 8, pad_mode: str = "reflect",
                 sample_posterior: bool = False, source: str = ""):
        if not 0 <= timestep < len(alphas_cumprod):
            raise ValueError(f"timestep {timestep} outside the schedule of {len(alphas_cumprod)} steps")
        if prediction_type not in ("epsilon", "v_prediction", "sample"):
            raise SparsevidError(f"unsupported prediction_type {prediction_type!r} in the Difix scheduler config")
        self.unet, self.vae = unet, vae
        self.prompt_embeds = prompt_embeds
        self.timestep = int(timestep)
        abar = float(alphas_cumprod[timestep])
        self.sqrt_abar, self.sqrt_one_minus_abar = abar ** 0.5, (1.0 - abar) ** 0.5
        self.prediction_type = prediction_type
        self.reference_attention = bool(reference_attention)
        self.layout = ViewLayout()
        if self.reference_attention and install_reference_attention(unet, self.layout) == 0:
            raise SparsevidError("the Difix UNet has no self-attention layers for reference views")
        self.pad_multiple, self.pad_mode = int(pad_multiple), pad_mode
        self.sample_posterior = bool(sample_posterior)
        self.source = source
        self.channels_last = False
        sf = vae.config
        self.scaling_factor = float(sf.scaling_factor)
        self.shift_factor = float(sf.shift_factor) if sf.shift_factor is not None else 0.0
        self._unet_fn, self._enc_fn, self._dec_fn = unet, vae.encoder, vae.decoder
        self._cudagraphs = False
        p_unet, p_vae = next(unet.parameters()), next(vae.parameters())
        self.device, self.dtype, self.vae_dtype = p_unet.device, p_unet.dtype, p_vae.dtype
        self.prompt_embeds = prompt_embeds.to(self.device, self.dtype)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike = REPO_DIFIX, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32, reference_attention: bool | None = None,
                        allow_download: bool = False, prompt: str = DEFAULT_PROMPT,
                        timestep: int = DEFAULT_TIMESTEP, lora_alpha: float | None = None,
                        **kwargs) -> "DifixPipeline":
        """Load published Difix weights from a folder or a Hugging Face repo id (local cache first;
        downloaded only with ``allow_download``). ``reference_attention=None`` detects difix_ref.
        Extra ``kwargs`` go to the constructor (pad_multiple, pad_mode, sample_posterior)."""
        name = str(path_or_repo_id)
        hint = REPO_DIFIX_REF if "ref" in name.lower() else REPO_DIFIX
        folder = resolve_weights(path_or_repo_id, allow_download=allow_download, repo_hint=hint)
        check_layout(folder, hint)
        if reference_attention is None:
            reference_attention = detect_reference(folder, name if looks_like_repo_id(name) else "")
        sched_path = folder / "scheduler" / "scheduler_config.json"
        if sched_path.is_file():
            sched = read_json(sched_path)
        else:
            log.warn(f"difix: {sched_path} missing; using the DDPM scaled-linear schedule (0.00085..0.012, 1000)")
            sched = {}
        embeds = prompt_embedding(folder, prompt)
        unet = load_unet(folder)
        vae = load_vae(folder, lora_alpha)
        cross = unet.config.cross_attention_dim
        if embeds.shape[-1] != cross:
            raise SparsevidError(f"prompt embedding width {embeds.shape[-1]} != UNet cross_attention_dim {cross}",
                                 path=folder, fix="the text encoder does not belong to this UNet; re-download")
        pipe = cls(unet, vae, embeds, ddpm_alphas_cumprod(sched), timestep=timestep,
                   prediction_type=sched.get("prediction_type", "epsilon"),
                   reference_attention=bool(reference_attention), source=str(folder), **kwargs)
        return pipe.to(device, dtype)

    def to(self, device: str | torch.device, dtype: torch.dtype = torch.float32) -> "DifixPipeline":
        """Move to ``device``/``dtype`` (fp16 keeps the VAE in fp32 when its config asks to upcast)."""
        self.device, self.dtype = torch.device(device), dtype
        vae_dtype = torch.float32 if (dtype == torch.float16 and self.vae.config.extra.get("force_upcast", True)) \
            else dtype
        torch.nn.Module.to(self.unet, self.device, dtype)  # (plain cast; skips diffusers' fp32-module warning)
        self.vae.to(self.device, vae_dtype)
        self.vae_dtype = vae_dtype
        self.prompt_embeds = self.prompt_embeds.to(self.device, dtype)
        return self

    def optimize(self, channels_last: bool = True, compile: bool = False, compile_mode: str = "default",
                 fuse_qkv: bool = False) -> "DifixPipeline":
        """Speed options for CUDA: cuDNN autotuning (``torch.backends.cudnn.benchmark``, a global
        setting), matmul attention for the VAE's 512-wide heads (:class:`WideHeadAttnProcessor`),
        channels-last memory, ``torch.compile`` of UNet/encoder/decoder (shapes are
        static per resolution; a new resolution recompiles), fused QKV projections."""
        if self.device.type == "cuda":
            # cuDNN picks conv algorithms by timing them once per shape (the shapes are fixed per
            # resolution); its default heuristics choose slower ones for some bf16 VAE convs
            torch.backends.cudnn.benchmark = True
            # the VAE mid-block attention has one 512-wide head: matmuls beat the generic SDPA kernel
            install_wide_head_attention(self.vae)
        if fuse_qkv and not self.reference_attention:
            self.unet.fuse_qkv_projections()
        if channels_last:
            self.unet.to(memory_format=torch.channels_last)
            self.vae.to(memory_format=torch.channels_last)
            self.channels_last = True
        if compile:
            kw = dict(mode=compile_mode, fullgraph=False, dynamic=False)
            self._unet_fn = torch.compile(self.unet, **kw)
            self._enc_fn = torch.compile(self.vae.encoder, **kw)
            self._dec_fn = torch.compile(self.vae.decoder, **kw)
            self._cudagraphs = compile_mode in ("reduce-overhead", "max-autotune")
        return self

    # ------------------------------------------------------------------ inference
    @contextlib.contextmanager
    def _views(self, num_views: int) -> Iterator[None]:
        old = self.layout.num_views
        self.layout.num_views = num_views
        try:
            yield
        finally:
            self.layout.num_views = old

    def _fmt(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()

    def denoise(self, z: torch.Tensor, num_views: int) -> torch.Tensor:
        """Scaled latents [B*V, L, h, w] -> predicted clean latents x0 (same shape, UNet dtype)."""
        n = z.shape[0]
        t = torch.full((n,), self.timestep, device=z.device, dtype=torch.long)
        enc = self.prompt_embeds.expand(n, -1, -1)
        with self._views(num_views):
            pred = self._unet_fn(z, t, encoder_hidden_states=enc, return_dict=False)[0]
        zf, pf = z.float(), pred.float()
        if self.prediction_type == "epsilon":
            x0 = (zf - self.sqrt_one_minus_abar * pf) / self.sqrt_abar
        elif self.prediction_type == "v_prediction":
            x0 = self.sqrt_abar * zf - self.sqrt_one_minus_abar * pf
        else:
            x0 = pf
        return x0.to(z.dtype)

    def _encode(self, x: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x [N, 3, H, W] in [-1, 1] -> (scaled latents [N, L, H/8, W/8] in the UNet dtype, skips)."""
        x = self._fmt(x.to(self.device, self.vae_dtype))
        moments, skips = self._enc_fn(x)
        if self.vae.quant_conv is not None:
            moments = self.vae.quant_conv(moments)
        mean, logvar = moments.chunk(2, dim=1)
        z = mean
        if self.sample_posterior:
            std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
            z = mean + std * torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return ((z - self.shift_factor) * self.scaling_factor).to(self.dtype), skips

    def _decode(self, x0: torch.Tensor, skips: list[torch.Tensor], clamp: bool) -> torch.Tensor:
        """Scaled clean latents [N, L, h, w] + the same N views' skips -> images [N, 3, 8h, 8w]."""
        lat = (x0.to(self.vae_dtype) / self.scaling_factor) + self.shift_factor
        if self.vae.post_quant_conv is not None:
            lat = self.vae.post_quant_conv(lat)
        out = self._dec_fn(self._fmt(lat), [self._fmt(s) for s in skips])
        return out.clamp(-1.0, 1.0) if clamp else out.clone()

    @torch.no_grad()
    def forward_views(self, x: torch.Tensor, num_views: int, decode_all: bool = False,
                      generator: torch.Generator | None = None, clamp: bool = True) -> torch.Tensor:
        """x [B*V, 3, H, W] in [-1, 1] (H, W multiples of 8; views of a sample consecutive, target
        first) -> fixed targets [B, 3, H, W] in [-1, 1] (all [B*V] views with ``decode_all``;
        not clamped to [-1, 1] with ``clamp=False``)."""
        if x.shape[0] % num_views:
            raise ValueError(f"{x.shape[0]} views is not a multiple of num_views={num_views}")
        if self._cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        z, skips = self._encode(x, generator)
        x0 = self.denoise(self._fmt(z), num_views)
        if not decode_all and num_views > 1:
            x0 = x0[::num_views]
            skips = [s[::num_views] for s in skips]
        return self._decode(x0, skips, clamp)

    @torch.no_grad()
    def forward_shared_refs(self, x: torch.Tensor, ref_x: torch.Tensor, ref_index: torch.Tensor,
                            generator: torch.Generator | None = None, clamp: bool = True) -> torch.Tensor:
        """Targets x [B, 3, H, W] and a pool of references ref_x [R, 3, H, W] (both in [-1, 1], H, W
        multiples of 8); target b uses references ``ref_index[b]`` ([B, k] long). Each reference is
        VAE-encoded once however many targets use it -> fixed targets [B, 3, H, W] in [-1, 1]."""
        b, k = ref_index.shape
        if b != x.shape[0]:
            raise ValueError(f"ref_index has {b} rows for {x.shape[0]} targets")
        if self._cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        z_all, skips = self._encode(torch.cat([x, ref_x.to(x.device, x.dtype)]), generator)
        idx = ref_index.to(z_all.device).long() + b
        order = torch.cat([torch.arange(b, device=z_all.device)[:, None], idx], dim=1).flatten()  # (b v)
        x0 = self.denoise(self._fmt(z_all[order]), 1 + k)[:: 1 + k]
        return self._decode(x0, [s[:b] for s in skips], clamp)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, refs: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Fix ``images`` [B, 3, H, W] in [0, 1] given references ``refs`` [B, R, 3, H, W] in [0, 1]
        (or None) -> [B, 3, H, W] float32 in [0, 1], same size as the input."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W], got {tuple(images.shape)}")
        b, _, h, w = images.shape
        views = images[:, None]
        if refs is not None and refs.shape[1] > 0:
            if refs.shape[0] != b or refs.shape[2:] != images.shape[1:]:
                raise ValueError(f"refs must be [{b}, R, 3, {h}, {w}], got {tuple(refs.shape)}")
            if not self.reference_attention:
                raise ValueError("these Difix weights take no reference views (use difix_ref)")
            views = torch.cat([views, refs.to(images.device, images.dtype)], dim=1)
        v = views.shape[1]
        x = pad_to_multiple(views.flatten(0, 1).float(), self.pad_multiple, self.pad_mode) * 2.0 - 1.0
        out = self.forward_views(x, v, generator=generator)
        return ((out[..., :h, :w].float() + 1.0) * 0.5).clamp(0.0, 1.0)

    @torch.no_grad()
    def fix_with_pool(self, images: torch.Tensor, ref_pool: torch.Tensor, ref_index: torch.Tensor,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """Like ``__call__`` with references picked from a shared pool: ``images`` [B, 3, H, W] and
        ``ref_pool`` [R, 3, H, W] in [0, 1], ``ref_index`` [B, k] -> [B, 3, H, W] in [0, 1]. The pool
        is encoded once per call (cheaper than ``__call__`` when targets share references)."""
        if not self.reference_attention:
            raise ValueError("these Difix weights take no reference views (use difix_ref)")
        b, _, h, w = images.shape
        if ref_pool.shape[1:] != images.shape[1:]:
            raise ValueError(f"ref_pool must be [R, 3, {h}, {w}], got {tuple(ref_pool.shape)}")
        used, inverse = torch.unique(ref_index.cpu(), return_inverse=True)  # encode only the used refs
        pad = (lambda t: pad_to_multiple(t.float(), self.pad_multiple, self.pad_mode) * 2.0 - 1.0)
        out = self.forward_shared_refs(pad(images), pad(ref_pool[used.to(ref_pool.device)].to(images.device)),
                                       inverse.reshape(ref_index.shape), generator=generator)
        return ((out[..., :h, :w].float() + 1.0) * 0.5).clamp(0.0, 1.0)
