"""Reference-view self-attention for ``difix_ref``.

The UNet runs on a batch of ``B * V`` views laid out ``(b v)`` (target first, then its
references). In each transformer block's self-attention (``attn1``) the ``V`` views of a sample
attend over their tokens jointly: ``[B*V, N, C] -> [B, V*N, C]`` for q/k/v, one attention, and
back. Cross-attention (``attn2``) and feed-forward stay per view, so the weights are those of a
stock UNet. With ``V = 1`` this is plain self-attention.

Installed with ``unet.set_attn_processor`` on the ``attn1`` processors only; diffusers classes
are not modified.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class ViewLayout:
    """How many views each sample of the current UNet batch has (shared by all processors;
    :class:`DifixPipeline` sets it around each UNet call)."""

    num_views: int = 1


class ReferenceViewAttnProcessor:
    """diffusers attention processor: self-attention over the tokens of all views of a sample.

    Args:
        layout: the shared :class:`ViewLayout`; ``layout.num_views`` must divide the batch.
    """

    def __init__(self, layout: ViewLayout):
        self.layout = layout

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 **kwargs) -> torch.Tensor:
        """hidden_states [B*V, N, C] (or [B*V, C, H, W]) -> same shape."""
        if encoder_hidden_states is not None:
            raise ValueError("ReferenceViewAttnProcessor is for self-attention (attn1) only")
        if attention_mask is not None:
            raise ValueError("ReferenceViewAttnProcessor does not support attention masks")
        if attn.spatial_norm is not None or attn.group_norm is not None:
            raise ValueError("ReferenceViewAttnProcessor expects a transformer self-attention without norms")
        residual = hidden_states
        four_d = hidden_states.ndim == 4
        if four_d:
            bv, c, hh, ww = hidden_states.shape
            hidden_states = hidden_states.flatten(2).transpose(1, 2)
        bv, n, _ = hidden_states.shape
        v = int(self.layout.num_views)
        if v < 1 or bv % v:
            raise ValueError(f"batch of {bv} views is not a multiple of num_views={v}")
        b = bv // v
        q, k, val = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        heads = attn.heads
        d = k.shape[-1] // heads

        def joint(t: torch.Tensor) -> torch.Tensor:  # [B*V, N, heads*d] -> [B, heads, V*N, d]
            return t.reshape(b, v * n, heads, d).transpose(1, 2)

        q, k, val = joint(q), joint(k), joint(val)
        if attn.norm_q is not None:
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        out = F.scaled_dot_product_attention(q, k, val, scale=attn.scale)
        out = out.transpose(1, 2).reshape(bv, n, heads * d).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if four_d:
            out = out.transpose(1, 2).reshape(bv, c, hh, ww)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def install_reference_attention(unet, layout: ViewLayout) -> int:
    """Set :class:`ReferenceViewAttnProcessor` on every ``attn1`` of ``unet`` (others unchanged).

    Returns the number of processors replaced (0 means the UNet has no transformer blocks).
    """
    current = unet.attn_processors
    proc = ReferenceViewAttnProcessor(layout)
    new = {name: (proc if name.endswith("attn1.processor") else p) for name, p in current.items()}
    count = sum(name.endswith("attn1.processor") for name in new)
    unet.set_attn_processor(new)  # (diffusers consumes the dict)
    return count


class WideHeadAttnProcessor:
    """diffusers attention processor for attention with very wide heads (the VAE's mid-block:
    one head of 512 channels over every latent pixel).

    Same result as diffusers' ``AttnProcessor2_0``, but for ``head_dim > max_fused_head_dim`` the
    attention is two matrix products and a float32 softmax instead of
    ``F.scaled_dot_product_attention``: no fused kernel takes 512-wide heads, and the generic
    memory-efficient kernel SDPA falls back to took 2.6 ms per call at 72x128 latents on an H100,
    about 8 times the cost of the matmuls. The score matrix is materialised: [B, N, N] for N latent
    pixels (170 MB in bf16 at 576x1024 input), fine for one image at a time on a GPU.
    """

    def __init__(self, max_fused_head_dim: int = 256):
        self.max_fused_head_dim = int(max_fused_head_dim)

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 **kwargs) -> torch.Tensor:
        """hidden_states [B, C, H, W] or [B, N, C] -> same shape."""
        if attention_mask is not None or attn.spatial_norm is not None:
            raise ValueError("WideHeadAttnProcessor supports neither attention masks nor spatial norms")
        residual = hidden_states
        four_d = hidden_states.ndim == 4
        if four_d:
            b, c, hh, ww = hidden_states.shape
            hidden_states = hidden_states.view(b, c, hh * ww).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        q, k, v = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        bsz, n, inner = q.shape
        heads = attn.heads
        d = inner // heads

        def split(t: torch.Tensor) -> torch.Tensor:  # [B, N, heads*d] -> [B, heads, N, d]
            return t.view(bsz, -1, heads, d).transpose(1, 2)

        q, k, v = split(q), split(k), split(v)
        if d > self.max_fused_head_dim:
            scores = torch.matmul(q, k.transpose(-1, -2)).float() * attn.scale
            out = torch.matmul(scores.softmax(dim=-1).to(v.dtype), v)
        else:
            out = F.scaled_dot_product_attention(q, k, v, scale=attn.scale)
        out = out.transpose(1, 2).reshape(bsz, n, heads * d).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if four_d:
            out = out.transpose(-1, -2).reshape(b, c, hh, ww)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def install_wide_head_attention(module: torch.nn.Module, max_fused_head_dim: int = 256) -> int:
    """Set :class:`WideHeadAttnProcessor` on every diffusers ``Attention`` in ``module`` whose heads are
    wider than ``max_fused_head_dim`` (e.g. the VAE mid-blocks). Returns how many were set."""
    from diffusers.models.attention_processor import Attention

    proc = WideHeadAttnProcessor(max_fused_head_dim)
    count = 0
    for m in module.modules():
        if isinstance(m, Attention) and m.inner_dim // m.heads > max_fused_head_dim:
            m.set_processor(proc)
            count += 1
    return count
