"""The Difix VAE: the Stable Diffusion VAE plus bias-free 1x1 skip convolutions from the
encoder to the decoder.

Skip wiring (``block_out_channels`` = ``(c0, c1, c2, c3)``, SD: 128, 256, 512, 512): the encoder records the *input* of each down block
(``s0 = conv_in(x)`` [c0, H], ``s1`` [c0, H/2], ``s2`` [c1, H/4], ``s3`` [c2, H/8]); the decoder
adds ``skip_conv_{i+1}(gamma * s_{n-1-i})`` to the input of up block ``i`` (after conv_in and the
mid block for ``i = 0``). For SD channels (128, 256, 512, 512) that is 512->512, 256->512,
128->512 and 128->256.

Built from diffusers' ``Encoder``/``Decoder`` blocks (same parameter names as
``AutoencoderKL``, so published state dicts load unchanged); the forward passes are our own.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import nn

from sparsevid.fixer.difix._deps import diffusers_vae_parts

_Encoder, _Decoder = diffusers_vae_parts()


@dataclass
class SkipVAEConfig:
    """The fields of ``vae/config.json`` we use (AutoencoderKL's plus Difix's skip settings)."""

    in_channels: int = 3
    out_channels: int = 3
    down_block_types: tuple[str, ...] = ("DownEncoderBlock2D",) * 4
    up_block_types: tuple[str, ...] = ("UpDecoderBlock2D",) * 4
    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    act_fn: str = "silu"
    latent_channels: int = 4
    norm_num_groups: int = 32
    scaling_factor: float = 0.18215
    shift_factor: float | None = None
    use_quant_conv: bool = True
    use_post_quant_conv: bool = True
    mid_block_add_attention: bool = True
    # Difix additions
    lora_rank: int = 4
    lora_alpha: float | None = None
    gamma: float = 1.0
    ignore_skip: bool = False
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "SkipVAEConfig":
        names = {f.name for f in fields(cls)} - {"extra"}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
        return cls(**kw, extra={k: v for k, v in d.items() if k not in names})

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
        return {**self.extra, **d}

    @property
    def effective_lora_alpha(self) -> float:
        """LoRA alpha (peft's default 8 when the config does not say; Difix trained with it)."""
        return float(self.lora_alpha) if self.lora_alpha is not None else 8.0


def skip_channels(block_out_channels: tuple[int, ...]) -> list[tuple[int, int]]:
    """(in, out) channels of skip_conv_1..n for the given VAE block channels."""
    ch = list(block_out_channels)
    n = len(ch)
    enc_inputs = [ch[0]] + ch[:-1]                 # channels of the input of down block j
    dec_inputs = [ch[-1]] + list(reversed(ch))[:-1]  # channels of the input of up block i
    return [(enc_inputs[n - 1 - i], dec_inputs[i]) for i in range(n)]


class SkipEncoder(_Encoder):
    """diffusers' VAE encoder whose forward also returns the inputs of its down blocks."""

    def forward(self, sample: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:  # type: ignore[override]
        """[N, 3, H, W] -> (moments [N, 2L, H/8, W/8] before quant_conv, skips [s0..s_{n-1}])."""
        h = self.conv_in(sample)
        skips = []
        for block in self.down_blocks:
            skips.append(h)
            h = block(h)
        h = self.mid_block(h)
        h = self.conv_out(self.conv_act(self.conv_norm_out(h)))
        return h, skips


class SkipDecoder(_Decoder):
    """diffusers' VAE decoder plus ``skip_conv_1..n`` added to the input of each up block."""

    def __init__(self, *args, block_out_channels: tuple[int, ...], gamma: float = 1.0,
                 ignore_skip: bool = False, **kwargs):
        super().__init__(*args, block_out_channels=block_out_channels, **kwargs)
        for i, (cin, cout) in enumerate(skip_channels(tuple(block_out_channels))):
            setattr(self, f"skip_conv_{i + 1}", nn.Conv2d(cin, cout, kernel_size=1, bias=False))
        self.gamma = float(gamma)
        self.ignore_skip = bool(ignore_skip)

    @property
    def skip_convs(self) -> list[nn.Conv2d]:
        return [getattr(self, f"skip_conv_{i + 1}") for i in range(len(self.up_blocks))]

    def forward(self, sample: torch.Tensor, skips: list[torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        """latents [N, L, h, w] (after post_quant_conv) + encoder skips -> image [N, 3, 8h, 8w]."""
        h = self.mid_block(self.conv_in(sample), None)
        use_skips = not self.ignore_skip
        if use_skips and (skips is None or len(skips) != len(self.up_blocks)):
            raise ValueError(f"the Difix decoder needs {len(self.up_blocks)} skip activations, got "
                             f"{None if skips is None else len(skips)}")
        for i, block in enumerate(self.up_blocks):
            if use_skips:
                s = skips[len(skips) - 1 - i]
                h = h + self.skip_convs[i](s * self.gamma if self.gamma != 1.0 else s)
            h = block(h, None)
        h = self.conv_out(self.conv_act(self.conv_norm_out(h)))
        return h


class SkipVAE(nn.Module):
    """Encoder + decoder with skips; parameter names as in the published ``vae/`` weights
    (after the LoRA has been merged)."""

    def __init__(self, config: SkipVAEConfig):
        super().__init__()
        c = config
        self.config = c
        self.encoder = SkipEncoder(in_channels=c.in_channels, out_channels=c.latent_channels,
                                   down_block_types=c.down_block_types, block_out_channels=c.block_out_channels,
                                   layers_per_block=c.layers_per_block, act_fn=c.act_fn,
                                   norm_num_groups=c.norm_num_groups, double_z=True,
                                   mid_block_add_attention=c.mid_block_add_attention)
        self.decoder = SkipDecoder(in_channels=c.latent_channels, out_channels=c.out_channels,
                                   up_block_types=c.up_block_types, block_out_channels=c.block_out_channels,
                                   layers_per_block=c.layers_per_block, act_fn=c.act_fn,
                                   norm_num_groups=c.norm_num_groups,
                                   mid_block_add_attention=c.mid_block_add_attention,
                                   gamma=c.gamma, ignore_skip=c.ignore_skip)
        L = c.latent_channels
        self.quant_conv = nn.Conv2d(2 * L, 2 * L, 1) if c.use_quant_conv else None
        self.post_quant_conv = nn.Conv2d(L, L, 1) if c.use_post_quant_conv else None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """x [N, 3, H, W] in [-1, 1] -> (mean [N, L, H/8, W/8], logvar (same), skips)."""
        moments, skips = self.encoder(x)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0), skips

    def decode(self, z: torch.Tensor, skips: list[torch.Tensor] | None) -> torch.Tensor:
        """z [N, L, h, w] (unscaled latents) + skips of the same N views -> [N, 3, 8h, 8w] (unclamped)."""
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z, skips)
