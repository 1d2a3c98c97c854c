#!/usr/bin/env python3
"""Speed and accuracy of the Difix pipeline at full size (random weights; speed does not depend
on their values).

Builds the real architecture: the SD-Turbo UNet (SD 2.1: 320/640/1280/1280, heads 5/10/20/20,
cross-attention 1024, linear projections) and the SD VAE with Difix's 4 skip convs, then runs
sparsevid's own DifixPipeline on a target + reference view at 576x1024:

  (a) fp32 straightforward: both views through VAE encode, UNet, and VAE decode (torch defaults);
  (b) optimised: bf16, channels-last, decode only the target, SDPA attention, then
      torch.compile (compile time reported separately) and CUDA graphs (reduce-overhead).

Accuracy: each row's target image (before clamping) vs. strict fp32 (TF32 off): max abs error
and relative L2 error. Timing: CUDA events, warm-up, median of --runs.

Run on the GPU machine from the repo root (diffusers on PYTHONPATH):
    python3 tools/gpu/difix_bench.py                  # full size, CUDA
    python3 tools/gpu/difix_bench.py --tiny --device cpu --no-compile   # logic check on a CPU
Writes $OUT/difix_bench.json when OUT is set.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

SD_TURBO_UNET = {
    "act_fn": "silu", "attention_head_dim": [5, 10, 20, 20], "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False, "cross_attention_dim": 1024,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "downsample_padding": 1, "dual_cross_attention": False, "flip_sin_to_cos": True, "freq_shift": 0,
    "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05,
    "norm_num_groups": 32, "out_channels": 4, "sample_size": 64, "use_linear_projection": True,
    "upcast_attention": False, "only_cross_attention": False,
}
SD_VAE = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "in_channels": 3, "out_channels": 3, "latent_channels": 4,
    "layers_per_block": 2, "norm_num_groups": 32, "scaling_factor": 0.18215, "force_upcast": True,
    "lora_rank": 4, "gamma": 1.0, "ignore_skip": False,
}
TINY_UNET = {**SD_TURBO_UNET, "attention_head_dim": [2, 4], "block_out_channels": [32, 64],
             "cross_attention_dim": 32, "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
             "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 1, "norm_num_groups": 8}
TINY_VAE = {**SD_VAE, "block_out_channels": [8, 16, 32, 32], "layers_per_block": 1, "norm_num_groups": 4}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="tiny configs (logic check, e.g. on a CPU)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--height", type=int, default=576)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--refs", type=int, default=1, help="reference views per target")
    p.add_argument("--batch", type=int, default=4, help="targets per call for the batched row (0 = skip)")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    p.add_argument("--no-cudagraphs", action="store_true", help="skip the reduce-overhead (CUDA graphs) row")
    p.add_argument("--autotune", action="store_true", help="also try mode=max-autotune-no-cudagraphs (slow compile)")
    p.add_argument("--modes", default="", help="compile modes to time instead of the defaults, comma-separated: "
                   "a torch.compile mode, optionally +freeze (inductor freezing) and/or +contig (no channels-last)")
    p.add_argument("--compile-only", action="store_true", help="skip the eager rows (fp32 strict reference kept)")
    p.add_argument("--profile", action="store_true", help="print the top CUDA kernels of the first compiled mode")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.tiny and a.height == 576 and a.width == 1024:
        a.height, a.width = 40, 72
    return a


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn, device: torch.device, warmup: int, runs: int) -> list[float]:
    """Per-call milliseconds of ``fn()`` (CUDA events on GPU, perf_counter otherwise)."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(runs):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            out.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
    return out


def test_views(b: int, v: int, h: int, w: int, device: torch.device, seed: int) -> torch.Tensor:
    """[b*v, 3, h, w] smooth synthetic images in [-1, 1] (views of a sample are shifted copies)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w + 8 * v), indexing="ij")
    imgs = []
    for i in range(b):
        phase = torch.rand(3, generator=g) * 6.28
        freq = 2 + 6 * torch.rand(3, generator=g)
        base = torch.stack([torch.sin(freq[c] * (xx * 3 + yy * 2) + phase[c]) * 0.6 + 0.2 * torch.cos(9 * yy)
                            for c in range(3)])
        for j in range(v):
            imgs.append(base[:, :, 8 * j: 8 * j + w])
    x = torch.stack(imgs).clamp(-1, 1)
    return (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(-1, 1).to(device)


def build_pipeline(unet_cfg: dict, vae_cfg: dict, device: torch.device, seed: int):
    from diffusers import UNet2DConditionModel

    from sparsevid.fixer.difix.pipeline import DifixPipeline, ddpm_alphas_cumprod
    from sparsevid.fixer.difix.vae import SkipVAE, SkipVAEConfig

    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(unet_cfg).eval().requires_grad_(False)
        vae = SkipVAE(SkipVAEConfig.from_dict(vae_cfg)).eval().requires_grad_(False)
    emb = torch.randn(1, 77, unet_cfg["cross_attention_dim"], device=device)
    return DifixPipeline(unet, vae, emb, ddpm_alphas_cumprod({}), reference_attention=True)


def clone_pipeline(pipe, dtype: torch.dtype):
    from sparsevid.fixer.difix.pipeline import DifixPipeline, ddpm_alphas_cumprod

    unet, vae = copy.deepcopy(pipe.unet), copy.deepcopy(pipe.vae)
    new = DifixPipeline(unet, vae, pipe.prompt_embeds.clone(), ddpm_alphas_cumprod({}),
                        reference_attention=pipe.reference_attention)
    return new.to(pipe.device, dtype)


def set_tf32(flags: tuple[bool, bool] | None) -> tuple[bool, bool]:
    """Set (matmul, cudnn) TF32 flags when given; returns the previous ones."""
    old = (bool(torch.backends.cuda.matmul.allow_tf32), bool(torch.backends.cudnn.allow_tf32))
    if flags is not None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
    return old


def errors(out: torch.Tensor, ref: torch.Tensor) -> dict:
    o, r = out.double(), ref.double()
    return {"max_abs_err": float((o - r).abs().max()), "mean_abs_err": float((o - r).abs().mean()),
            "rel_l2_err": float((o - r).norm() / r.norm().clamp_min(1e-12)),
            "max_abs_err_image01": float(((o.clamp(-1, 1) - r.clamp(-1, 1)).abs().max()) / 2)}


def main() -> int:
    a = parse()
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available; use --device cpu (with --tiny)", file=sys.stderr)
        return 2
    import diffusers

    v = 1 + a.refs
    info = {"torch": torch.__version__, "diffusers": diffusers.__version__, "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "size": [a.height, a.width], "views": v, "tiny": a.tiny}
    print(json.dumps(info))
    t0 = time.perf_counter()
    p32 = build_pipeline(TINY_UNET if a.tiny else SD_TURBO_UNET, TINY_VAE if a.tiny else SD_VAE, device, a.seed)
    n_unet = sum(p.numel() for p in p32.unet.parameters()) / 1e6
    n_vae = sum(p.numel() for p in p32.vae.parameters()) / 1e6
    print(f"built UNet {n_unet:.0f}M + VAE {n_vae:.1f}M params in {time.perf_counter() - t0:.1f}s")
    x1 = test_views(1, v, a.height, a.width, device, a.seed)
    rows: list[dict] = []

    def add(name: str, fn, frames: int, ref: torch.Tensor | None, out: torch.Tensor | None, **extra) -> None:
        ms = time_ms(fn, device, a.warmup, a.runs)
        row = {"name": name, "ms_per_call_median": statistics.median(ms), "ms_per_call_min": min(ms),
               "ms_per_frame": statistics.median(ms) / frames, "frames_per_call": frames, **extra}
        if ref is not None and out is not None:
            row.update(errors(out[:: 1] if out.shape[0] == ref.shape[0] else out, ref))
        if device.type == "cuda":
            row["peak_mem_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
            torch.cuda.reset_peak_memory_stats(device)
        rows.append(row)
        print(f"  {name}: {row['ms_per_frame']:.1f} ms/frame", flush=True)

    # strict fp32 reference output (TF32 off)
    tf32 = set_tf32(None)
    set_tf32((False, False))
    ref = p32.forward_views(x1, v, clamp=False)
    if not a.compile_only:
        add("fp32 strict (TF32 off), target decoded", lambda: p32.forward_views(x1, v), 1, ref, ref)
    # the bf16 tolerance of this network: strict fp32 compute on weights and input rounded to bf16
    # (the error that merely storing them in bf16 causes, before any bf16 arithmetic)
    prd = clone_pipeline(p32, torch.bfloat16).to(device, torch.float32)
    out_r = prd.forward_views(x1.bfloat16().float(), v, clamp=False)
    add("tolerance: fp32 strict on bf16-rounded weights + input", lambda: None, 1, ref, out_r)
    rows[-1].update(ms_per_frame=float("nan"), ms_per_call_min=float("nan"))
    del prd
    set_tf32(tf32)
    info["tf32_defaults(matmul,cudnn)"] = list(tf32)
    # (a) straightforward fp32 with torch defaults: all views decoded
    if not a.compile_only:
        out_a = p32.forward_views(x1, v, decode_all=True, clamp=False)[::v]
        add("(a) fp32 straightforward (torch defaults, all views decoded)",
            lambda: p32.forward_views(x1, v, decode_all=True), 1, ref, out_a)

    # (b) optimised
    pb = clone_pipeline(p32, torch.bfloat16)
    del p32
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if not a.compile_only:
        out_b0 = pb.forward_views(x1, v, clamp=False)
        add("(b0) bf16 + target-only decode (eager, SDPA, contiguous)", lambda: pb.forward_views(x1, v), 1, ref,
            out_b0)
    pb.optimize(channels_last=True, compile=False)
    if not a.compile_only:
        out_b = pb.forward_views(x1, v, clamp=False)
        add("(b1) bf16 + channels-last + target-only decode (eager, SDPA)", lambda: pb.forward_views(x1, v), 1, ref,
            out_b)

    # the fixer's path: a batch of targets whose references come from a shared pool (each encoded once)
    xb = test_views(a.batch, 1, a.height, a.width, device, a.seed + 1) if a.batch > 1 else None
    pool = x1[1:v]
    pool_idx = torch.arange(a.refs, device=device).expand(max(a.batch, 1), a.refs)
    run_pool = (lambda: pb.forward_shared_refs(xb, pool, pool_idx))
    if xb is not None and not a.compile_only:
        add(f"(b1) same, batch of {a.batch} targets sharing {a.refs} ref(s)", run_pool, a.batch, None, None)

    modes = [m for m in a.modes.split(",") if m]
    if not a.no_compile and not modes:
        modes.append("default")
        if a.autotune:
            modes.append("max-autotune-no-cudagraphs")
        if not a.no_cudagraphs and device.type == "cuda":
            modes.append("reduce-overhead")
    for spec in modes:
        mode, *flags = spec.split("+")
        torch._dynamo.reset()
        torch._inductor.config.freezing = "freeze" in flags
        cl = "contig" not in flags
        if not cl and pb.channels_last:
            pb.unet.to(memory_format=torch.contiguous_format)
            pb.vae.to(memory_format=torch.contiguous_format)
            pb.channels_last = False
        pb.optimize(channels_last=cl, compile=True, compile_mode=mode)
        try:
            sync(device)
            t0 = time.perf_counter()
            out_c = pb.forward_views(x1, v, clamp=False)
            sync(device)
            t_first = time.perf_counter() - t0
            t0 = time.perf_counter()
            pb.forward_views(x1, v, clamp=False)  # cudagraph recording happens on the 2nd call
            sync(device)
            t_second = time.perf_counter() - t0
            label = ("CUDA graphs" if mode == "reduce-overhead" else mode) + "".join(f", {f}" for f in flags)
            add(f"(b2) bf16 + torch.compile ({label})", lambda: pb.forward_views(x1, v), 1, ref, out_c,
                compile_s=t_first, second_call_s=t_second)
            if spec == "default":  # where the time goes: encode (all views), UNet, decode (target)
                z, sk = pb._encode(x1, None)
                x0 = pb.denoise(pb._fmt(z), v)
                for stage, fn in (("encode", lambda: pb._encode(x1, None)),
                                  ("unet", lambda: pb.denoise(pb._fmt(z), v)),
                                  ("decode", lambda: pb._decode(x0[::v], [s_[::v] for s_ in sk], True))):
                    ms = time_ms(fn, device, a.warmup, a.runs)
                    info[f"stage_ms_{stage}"] = statistics.median(ms)
                print("  stages (ms):", {k: round(val, 1) for k, val in info.items() if k.startswith("stage_ms")})
            if a.profile and spec == modes[0] and device.type == "cuda":
                from torch.profiler import ProfilerActivity, profile

                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    for _ in range(5):
                        pb.forward_views(x1, v)
                    sync(device)
                print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=25, max_name_column_width=90))
            if xb is not None and spec == "default":
                t0 = time.perf_counter()
                run_pool()
                sync(device)
                add(f"(b2) bf16 + torch.compile ({label}), batch of {a.batch} sharing {a.refs} ref(s)", run_pool,
                    a.batch, None, None, compile_s=time.perf_counter() - t0)
        except Exception as e:  # report and keep the other rows
            print(f"  compile mode {mode} failed: {type(e).__name__}: {e}", flush=True)
            rows.append({"name": f"(b2) torch.compile ({mode})", "error": f"{type(e).__name__}: {e}"[:500]})

    # table
    print("\n| path | ms/frame (median) | min ms/call | compile s | max abs err | rel L2 err | peak GB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['name']} | failed: {r['error'][:80]} | | | | | |")
            continue
        fmt = (lambda k, f: (f.format(r[k]) if k in r else "-"))
        print(f"| {r['name']} | {r['ms_per_frame']:.1f} | {r['ms_per_call_min']:.1f} | {fmt('compile_s', '{:.0f}')} | "
              f"{fmt('max_abs_err', '{:.2e}')} | {fmt('rel_l2_err', '{:.2e}')} | {fmt('peak_mem_gb', '{:.1f}')} |")
    out_dir = os.environ.get("OUT")
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "difix_bench.json").write_text(json.dumps({"info": info, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
