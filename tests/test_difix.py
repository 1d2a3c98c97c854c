"""Difix backend: tiny random-weight replicas of nvidia/difix and nvidia/difix_ref in the
published folder layout, loaded through the real loader.

Checks: the merged VAE LoRA equals peft's unmerged computation; the reference-view attention
equals attention over explicitly concatenated tokens; the whole pipeline equals a reference
built from stock diffusers parts (peft VAE, DDPMScheduler.step); aspect/size are preserved;
missing or incomplete weights give clear errors; the fixers are registered and run.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
peft = pytest.importorskip("peft")
safetensors_torch = pytest.importorskip("safetensors.torch")

from sparsevid.errors import SparsevidError  # noqa: E402
from sparsevid.fixer.base import FixRequest, RefViews, get_fixer  # noqa: E402
from sparsevid.fixer.difix import DifixPipeline, nearest_refs  # noqa: E402
from sparsevid.fixer.difix.attention import ReferenceViewAttnProcessor, ViewLayout  # noqa: E402
from sparsevid.fixer.difix.pipeline import load_vae, pad_to_multiple  # noqa: E402
from sparsevid.fixer.difix.prompt import write_prompt_file  # noqa: E402
from sparsevid.fixer.difix.vae import SkipVAE, SkipVAEConfig, skip_channels  # noqa: E402
from sparsevid.fixer.difix.weights import PROMPT_CACHE_NAME, merge_lora  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LORA_SUFFIXES = ("conv1", "conv2", "conv_in", "conv_shortcut", "conv", "conv_out", "skip_conv_1", "skip_conv_2",
                 "skip_conv_3", "skip_conv_4", "to_k", "to_q", "to_v", "to_out.0")
TINY_UNET = {
    "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.25.1", "_name_or_path": "stabilityai/sd-turbo",
    "act_fn": "silu", "attention_head_dim": [2, 4], "block_out_channels": [32, 64], "center_input_sample": False,
    "cross_attention_dim": 32, "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "downsample_padding": 1, "flip_sin_to_cos": True,
    "freq_shift": 0, "in_channels": 4, "layers_per_block": 1, "mid_block_scale_factor": 1, "norm_eps": 1e-05,
    "norm_num_groups": 8, "out_channels": 4, "sample_size": 8, "use_linear_projection": True,
    "upcast_attention": False, "dual_cross_attention": False, "only_cross_attention": False,
}
TINY_VAE = {
    "_class_name": "AutoencoderKL", "_diffusers_version": "0.25.1", "act_fn": "silu",
    "block_out_channels": [8, 16, 32, 32], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "in_channels": 3, "out_channels": 3, "latent_channels": 4,
    "layers_per_block": 1, "norm_num_groups": 4, "sample_size": 64, "scaling_factor": 0.18215,
    "force_upcast": True, "lora_rank": 4, "gamma": 1.0, "ignore_skip": False,
}
SCHEDULER = {"_class_name": "DDPMScheduler", "_diffusers_version": "0.25.1", "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
             "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": False,
             "steps_offset": 1, "timestep_spacing": "trailing", "trained_betas": None, "variance_type": "fixed_small"}


def _gpt2_byte_chars() -> list[str]:
    """The 256 printable stand-ins of bytes used by byte-level BPE vocabularies."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


def _write_tokenizer(folder: Path) -> int:
    """A tiny CLIP tokenizer in the published file layout (vocab.json, merges.txt, config)."""
    folder.mkdir(parents=True)
    chars = _gpt2_byte_chars()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = 512, 513
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
         "unk_token": "<|endoftext|>"}))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
         "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
         "unk_token": "<|endoftext|>"}))
    return len(vocab)


def _write_text_encoder(folder: Path, vocab_size: int) -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(3)
    cfg = transformers.CLIPTextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=37,
                                      num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77,
                                      projection_dim=32, bos_token_id=512, eos_token_id=513, pad_token_id=513)
    transformers.CLIPTextModel(cfg).save_pretrained(str(folder), safe_serialization=True)


def _lora_targets(vae: torch.nn.Module) -> list[str]:
    """Difix's rule: decoder modules whose names end with one of the LoRA suffixes."""
    return [n for n, _ in vae.named_modules() if n.startswith("decoder") and n.endswith(LORA_SUFFIXES)]


def build_peft_vae(seed: int = 0) -> torch.nn.Module:
    """The tiny skip VAE with an unmerged peft LoRA 'vae_skip' (rank 4, alpha 8), random A and B."""
    torch.manual_seed(seed)
    vae = SkipVAE(SkipVAEConfig.from_dict(TINY_VAE))
    lcfg = peft.LoraConfig(r=4, lora_alpha=8, init_lora_weights="gaussian", target_modules=_lora_targets(vae))
    vae = peft.inject_adapter_in_model(lcfg, vae, adapter_name="vae_skip")
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
            elif "skip_conv" in name:
                p.normal_(0, 0.05)
    return vae.eval()


def write_replica(folder: Path, reference: bool, text_encoder: bool = True, seed: int = 0) -> dict:
    """Write a tiny Difix(-ref) folder in the published layout. Returns the in-memory parts
    (peft VAE, UNet, prompt embedding when known) for reference computations."""
    folder.mkdir(parents=True)
    unet_entry = ["unet_2d_condition", "UNet2DConditionModel"] if reference else ["diffusers", "UNet2DConditionModel"]
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "DifixPipeline", "_diffusers_version": "0.25.1", "feature_extractor": [None, None],
        "safety_checker": [None, None], "scheduler": ["diffusers", "DDPMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": unet_entry, "vae": ["autoencoder_kl", "AutoencoderKL"]}))
    (folder / "scheduler").mkdir()
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER))
    torch.manual_seed(seed + 1)
    unet = diffusers.UNet2DConditionModel.from_config(
        {k: v for k, v in TINY_UNET.items() if not k.startswith("_")}).eval()
    (folder / "unet").mkdir()
    (folder / "unet" / "config.json").write_text(json.dumps(TINY_UNET))
    safetensors_torch.save_file({k: v.contiguous() for k, v in unet.state_dict().items()},
                                str(folder / "unet" / "diffusion_pytorch_model.safetensors"))
    if reference:  # the repo's custom code: must never be executed by the loader
        (folder / "unet" / "unet_2d_condition.py").write_text("raise RuntimeError('bundled code was executed')\n")
    vae = build_peft_vae(seed)
    (folder / "vae").mkdir()
    (folder / "vae" / "config.json").write_text(json.dumps(TINY_VAE))
    (folder / "vae" / "autoencoder_kl.py").write_text("raise RuntimeError('bundled code was executed')\n")
    sd = {k: v.contiguous() for k, v in vae.state_dict().items()}
    safetensors_torch.save_file(sd, str(folder / "vae" / "diffusion_pytorch_model.safetensors"))
    emb = None
    if text_encoder:
        n = _write_tokenizer(folder / "tokenizer")
        _write_text_encoder(folder / "text_encoder", n)
    else:
        emb = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(seed + 2))
        write_prompt_file(folder / PROMPT_CACHE_NAME, {"remove degradation": emb})
    return {"vae": vae, "unet": unet, "emb": emb, "keys": sorted(sd)}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    root = tmp_path_factory.mktemp("difix")
    return {"difix": (root / "difix", write_replica(root / "difix", reference=False, text_encoder=True)),
            "difix_ref": (root / "difix_ref", write_replica(root / "difix_ref", reference=True,
                                                             text_encoder=False, seed=5))}


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEVID_CACHE", str(tmp_path / "cache"))


def _image(b: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g)


# ----------------------------------------------------------------------------- architecture facts
def test_skip_convs_and_lora_targets_of_the_full_size_vae():
    assert skip_channels((128, 256, 512, 512)) == [(512, 512), (256, 512), (128, 512), (128, 256)]
    with torch.device("meta"):
        vae = SkipVAE(SkipVAEConfig())
    assert len(_lora_targets(vae)) == 43
    assert vae.decoder.skip_conv_4.weight.shape == (256, 128, 1, 1)
    assert vae.decoder.skip_conv_1.bias is None


def test_replica_has_the_published_key_names(replicas):
    keys = replicas["difix"][1]["keys"]
    assert "decoder.skip_conv_1.base_layer.weight" in keys
    assert "decoder.skip_conv_1.lora_A.vae_skip.weight" in keys
    assert "decoder.up_blocks.0.resnets.0.conv1.lora_B.vae_skip.weight" in keys
    assert "decoder.mid_block.attentions.0.to_out.0.base_layer.bias" in keys
    assert "encoder.down_blocks.0.resnets.0.conv1.weight" in keys  # the encoder has no LoRA


# ----------------------------------------------------------------------------- LoRA merge
def test_merged_lora_equals_peft_unmerged(replicas):
    folder, parts = replicas["difix"]
    merged = load_vae(folder)
    x = _image(2, 24, 40, seed=1) * 2 - 1
    with torch.no_grad():
        mean_p, _, skips_p = parts["vae"].encode(x)
        ref = parts["vae"].decode(mean_p, skips_p)
        mean_m, _, skips_m = merged.encode(x)
        out = merged.decode(mean_m, skips_m)
        wrong = load_vae(folder, lora_alpha=4.0).decode(mean_m, skips_m)  # alpha = rank: the classic mistake
    torch.testing.assert_close(mean_m, mean_p, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert (wrong - ref).abs().max() > 1e-2


def test_merge_lora_rejects_partial_adapters():
    sd = {"m.base_layer.weight": torch.zeros(3, 2), "m.lora_A.vae_skip.weight": torch.zeros(4, 2)}
    with pytest.raises(ValueError, match="lacks its B"):
        merge_lora(sd)
    conv = {"c.base_layer.weight": torch.zeros(5, 3, 3, 3), "c.lora_A.vae_skip.weight": torch.randn(4, 3, 3, 3),
            "c.lora_B.vae_skip.weight": torch.randn(5, 4, 1, 1)}
    out, merged = merge_lora(conv, alpha=8.0)
    assert merged == ["c"] and out["c.weight"].shape == (5, 3, 3, 3)
    expect = 2.0 * torch.einsum("or,rikl->oikl", conv["c.lora_B.vae_skip.weight"][:, :, 0, 0],
                                conv["c.lora_A.vae_skip.weight"])
    torch.testing.assert_close(out["c.weight"], expect)


# ----------------------------------------------------------------------------- reference attention
@pytest.mark.parametrize("b,v", [(1, 2), (2, 3), (3, 1)])
def test_reference_attention_equals_concatenated_tokens(b, v):
    from diffusers.models.attention_processor import Attention, AttnProcessor

    torch.manual_seed(0)
    attn = Attention(query_dim=32, heads=4, dim_head=8, bias=False).eval()
    n = 10
    x = torch.randn(b * v, n, 32)
    layout = ViewLayout(num_views=v)
    attn.set_processor(ReferenceViewAttnProcessor(layout))
    with torch.no_grad():
        out = attn(x)
        attn.set_processor(AttnProcessor())  # plain (non-SDPA) attention as the reference
        joint = x.reshape(b, v * n, 32)      # explicit concatenation of each sample's views
        ref = attn(joint).reshape(b * v, n, 32)
        per_view = attn(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    if v > 1:
        assert (out - per_view).abs().max() > 1e-4  # it does mix views


def test_wide_head_attention_equals_stock_processor():
    """The VAE mid-block attention (one wide head, group norm, 4-D input): the matmul processor
    gives diffusers' own result; the installer picks only heads wider than the fused kernels take."""
    from diffusers.models.attention_processor import AttnProcessor

    from sparsevid.fixer.difix.attention import WideHeadAttnProcessor, install_wide_head_attention

    torch.manual_seed(0)
    vae = SkipVAE(SkipVAEConfig.from_dict({"block_out_channels": [8, 16, 32, 32], "layers_per_block": 1,
                                           "norm_num_groups": 4})).eval()
    mids = [vae.encoder.mid_block.attentions[0], vae.decoder.mid_block.attentions[0]]
    x = torch.randn(2, 32, 5, 7)
    for attn in mids:
        with torch.no_grad():
            attn.set_processor(AttnProcessor())
            ref = attn(x)
            attn.set_processor(WideHeadAttnProcessor(max_fused_head_dim=16))  # 32-wide head: matmul path
            wide = attn(x)
            attn.set_processor(WideHeadAttnProcessor())  # fused path
            fused = attn(x)
        torch.testing.assert_close(wide, ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-5)
    assert install_wide_head_attention(vae, max_fused_head_dim=16) == 2
    assert install_wide_head_attention(vae) == 0  # 32 <= 256: left to SDPA


# ----------------------------------------------------------------------------- pipeline
def _reference_difix(parts: dict, emb: torch.Tensor, views: torch.Tensor, num_views: int) -> torch.Tensor:
    """Stock-diffusers reference: peft VAE, stock UNet, DDPMScheduler.step at t=199 (V=1 only)."""
    assert num_views == 1
    sched = diffusers.DDPMScheduler.from_config(SCHEDULER)
    sched.set_timesteps(timesteps=[199])
    x = pad_to_multiple(views, 8) * 2 - 1
    with torch.no_grad():
        mean, _, skips = parts["vae"].encode(x)
        z = mean * 0.18215
        eps = parts["unet"](z, 199, encoder_hidden_states=emb.expand(len(z), -1, -1)).sample
        x0 = sched.step(eps, 199, z, generator=torch.Generator().manual_seed(0)).prev_sample
        out = parts["vae"].decode(x0 / 0.18215, skips).clamp(-1, 1)
    return (out[..., : views.shape[-2], : views.shape[-1]] + 1) / 2


def test_difix_pipeline_matches_stock_reference_and_keeps_size(replicas):
    folder, parts = replicas["difix"]
    pipe = DifixPipeline.from_pretrained(folder, device="cpu", dtype=torch.float32)
    assert not pipe.reference_attention
    img = _image(2, 37, 53, seed=2)  # not a multiple of 8
    out = pipe(img)
    assert out.shape == img.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    ref = _reference_difix(parts, pipe.prompt_embeds, img, 1)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=2e-4)
    # the prompt embedding was computed once with the text encoder and cached in the user cache
    cached = list((Path(os.environ["SPARSEVID_CACHE"]) / "difix").glob("*.safetensors"))
    assert len(cached) == 1
    again = DifixPipeline.from_pretrained(folder, device="cpu", dtype=torch.float32)
    torch.testing.assert_close(again.prompt_embeds, pipe.prompt_embeds)
    with pytest.raises(ValueError, match="no reference"):
        pipe(img, img[:, None])


def test_difix_ref_pipeline_views_are_joint_and_batches_independent(replicas):
    folder, _ = replicas["difix_ref"]
    pipe = DifixPipeline.from_pretrained(folder, device="cpu", dtype=torch.float32)
    assert pipe.reference_attention  # detected from the repo layout, bundled code not executed
    tgt = _image(2, 24, 40, seed=3)
    refs = _image(2, 24, 40, seed=4).reshape(2, 1, 3, 24, 40)
    two = pipe(tgt, refs)
    assert two.shape == tgt.shape
    one = pipe(tgt[:1], refs[:1])
    torch.testing.assert_close(two[:1], one, rtol=1e-4, atol=1e-4)  # samples do not mix
    other_ref = pipe(tgt[:1], torch.rand_like(refs[:1]))
    assert (other_ref - one).abs().max() > 1e-4  # the reference matters
    no_ref = pipe(tgt[:1])
    assert (no_ref - one).abs().max() > 1e-4
    three = pipe(tgt, torch.cat([refs, refs.flip(0)], dim=1))  # N = 2 reference views
    assert three.shape == tgt.shape and torch.isfinite(three).all()
    # a shared pool of references (each encoded once) gives the same images as per-sample refs
    pool = torch.cat([refs[:, 0], _image(1, 24, 40, seed=11)])  # [3, 3, H, W]
    index = torch.tensor([[0, 1], [1, 0]])
    pooled = pipe.fix_with_pool(tgt, pool, index)
    torch.testing.assert_close(pooled, three, rtol=1e-4, atol=1e-4)


def test_bf16_pipeline_close_to_fp32(replicas):
    folder, _ = replicas["difix_ref"]
    p32 = DifixPipeline.from_pretrained(folder, device="cpu", dtype=torch.float32)
    p16 = DifixPipeline.from_pretrained(folder, device="cpu", dtype=torch.bfloat16)
    tgt, refs = _image(1, 24, 32, seed=6), _image(1, 24, 32, seed=7)[:, None]
    # the bf16 pipeline runs in bf16 (the same pipeline twice would pass the closeness check alone)
    assert next(p16.unet.parameters()).dtype == torch.bfloat16 and next(p16.vae.parameters()).dtype == torch.bfloat16
    assert next(p32.unet.parameters()).dtype == torch.float32
    diff = (p32(tgt, refs) - p16(tgt, refs)).abs()
    assert 0 < float(diff.mean()) < 0.03


# ----------------------------------------------------------------------------- errors
def test_missing_folder_error_says_where_and_license(tmp_path):
    with pytest.raises(SparsevidError) as e:
        DifixPipeline.from_pretrained(tmp_path / "nope")
    msg = str(e.value)
    assert "hf download nvidia/difix" in msg and "non-commercial" in msg and "nope" in msg


def test_incomplete_folder_lists_missing_files(replicas, tmp_path):
    import shutil

    src, _ = replicas["difix"]
    dst = tmp_path / "partial"
    shutil.copytree(src, dst)
    (dst / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(SparsevidError, match=r"missing vae/diffusion_pytorch_model.safetensors.*non-commercial"):
        DifixPipeline.from_pretrained(dst)
    shutil.rmtree(dst / "text_encoder")
    with pytest.raises(SparsevidError, match="text_encoder"):
        DifixPipeline.from_pretrained(dst)


def test_repo_id_not_in_cache_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SparsevidError, match=r"not in the Hugging Face cache.*hf download nvidia/difix_ref"
                                             r".*non-commercial"):
        DifixPipeline.from_pretrained("nvidia/difix_ref", allow_download=True)


def test_hf_cache_layout_is_found(replicas, tmp_path, monkeypatch):
    """A snapshot in the Hugging Face cache (models--owner--name/snapshots/<rev>) is used offline."""
    import shutil

    src, _ = replicas["difix_ref"]
    hub = tmp_path / "hf"
    snap = hub / "models--nvidia--difix_ref" / "snapshots" / ("a" * 40)
    shutil.copytree(src, snap)
    (hub / "models--nvidia--difix_ref" / "refs").mkdir()
    (hub / "models--nvidia--difix_ref" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(hub))
    pipe = DifixPipeline.from_pretrained("nvidia/difix_ref")
    assert pipe.reference_attention and Path(pipe.source) == snap


# ----------------------------------------------------------------------------- fixer
def _pose(x: float, yaw: float = 0.0) -> torch.Tensor:
    c, s = torch.cos(torch.tensor(yaw)), torch.sin(torch.tensor(yaw))
    m = torch.eye(4, dtype=torch.float64)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = c, s, -s, c
    m[0, 3] = x
    return m


def test_nearest_refs_by_pose():
    refs = torch.stack([_pose(0.0), _pose(1.0), _pose(2.0), _pose(1.1, yaw=1.5)])
    cams = torch.stack([_pose(0.9), _pose(2.2)])
    idx = nearest_refs(cams, refs, 2)
    assert idx[0].tolist() == [1, 0] and idx[1].tolist() == [2, 1]


def test_difix_ref_fixer_through_the_registry(replicas):
    folder, _ = replicas["difix_ref"]
    fixer = get_fixer("difix_ref", weights=str(folder), device="cpu", num_refs=1)
    assert fixer.name == "difix_ref" and fixer.uses_refs
    b, r, h, w = 2, 3, 24, 36
    renders = _image(b, h, w, seed=8).permute(0, 2, 3, 1).contiguous()
    refimgs = _image(r, h, w, seed=9).permute(0, 2, 3, 1).contiguous()
    K = torch.tensor([[30.0, 0, w / 2], [0, 30.0, h / 2], [0, 0, 1]])
    valid = torch.ones(b, h, w, 1)
    valid[:, :, :4] = 0
    alpha = torch.rand(b, h, w, 1)
    req = FixRequest(renders.clone(), K.expand(b, 3, 3), torch.stack([_pose(0.2), _pose(1.8)]).float(),
                     RefViews(refimgs, K.expand(r, 3, 3), torch.stack([_pose(0), _pose(1), _pose(2)]).float()),
                     alpha=alpha, valid=valid)
    res = fixer.fix(req)
    assert res.images.shape == (b, h, w, 3) and res.confidence.shape == (b, h, w, 1)
    assert torch.equal(res.images[:, :, :4], renders[:, :, :4])  # outside the lens: as rendered
    assert torch.equal(req.renders, renders)  # request untouched
    assert float(res.confidence[:, :, :4].max()) == 0.0 and float(res.confidence.max()) <= 1.0
    assert res.extras["refs"].tolist() == [[0], [2]]
    # the same view fixed alone with its chosen reference gives the same image
    alone = fixer.pipe(renders[:1].permute(0, 3, 1, 2), refimgs[:1].permute(0, 3, 1, 2)[:, None])
    torch.testing.assert_close(res.images[:1, :, 4:], alone.permute(0, 2, 3, 1)[:, :, 4:], rtol=1e-4, atol=1e-4)


def test_difix_fixer_missing_weights_is_a_one_line_error(tmp_path):
    with pytest.raises(SparsevidError, match="hf download nvidia/difix"):
        get_fixer("difix", weights=str(tmp_path / "missing"), device="cpu")


def test_difix_settings_fail_before_any_work(replicas, tmp_path, capsys, monkeypatch):
    """Missing weights, a misspelt option and a damaged prompt embedding are each one line with exit 2, before
    the pose stage (nothing is written; the input has no poses, so poses would come first)."""
    import shutil

    from sparsevid.cli import main
    from sparsevid.data.load import demo_path

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"

    def one_line_error(*args: str) -> str:
        rc = main(["run", str(demo_path()), "-o", str(out), "--device", "cpu", "--fixer", "difix", *args])
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
        assert not out.exists()
        return lines[0]

    line = one_line_error("--difix-weights", str(tmp_path / "missing"))
    assert "Difix weight folder not found" in line and "hf download nvidia/difix" in line
    # a relative name that reads as a repo id too: the user hears there is no such folder either
    line = one_line_error("--difix-weights", "models/difix")
    assert f"neither a folder here ({tmp_path / 'models' / 'difix'}) nor in the Hugging Face cache" in line
    assert "allow_download" not in line  # offline: no download to offer
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert "(or let sparsevid fetch them: --fixer.options '{allow_download: true}')" in \
        one_line_error("--difix-weights", "models/difix")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder, _ = replicas["difix_ref"]
    line = one_line_error("--difix-weights", str(folder), "--fixer.options", "{allow_downlod: true}")
    assert "the difix fixer has no option 'allow_downlod' (did you mean 'allow_download'?)" in line
    damaged = tmp_path / "damaged"
    shutil.copytree(folder, damaged)
    (damaged / PROMPT_CACHE_NAME).write_bytes(b"\xff" * 64)
    with pytest.raises(SparsevidError, match="cannot read the prompt embedding file.*delete it"):
        DifixPipeline.from_pretrained(damaged)


# ----------------------------------------------------------------------------- GPU bench logic
def test_bench_script_runs_tiny_on_cpu(tmp_path, monkeypatch, capsys):
    """The GPU benchmark's logic, in-process on tiny configs (so it will not crash on the device)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("difix_bench", ROOT / "tools" / "gpu" / "difix_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setenv("OUT", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["difix_bench.py", "--tiny", "--device", "cpu", "--runs", "1", "--warmup", "0",
                                      "--no-compile", "--batch", "2", "--height", "16", "--width", "24"])
    assert bench.main() == 0
    out = capsys.readouterr().out
    assert "(a) fp32 straightforward" in out and "(b1) bf16" in out and "| path |" in out
    data = json.loads((tmp_path / "difix_bench.json").read_text())
    rows = {r["name"].split(":")[0]: r for r in data["rows"]}
    assert len(data["rows"]) == 6 and all(r["ms_per_frame"] > 0 for k, r in rows.items() if k != "tolerance")
    assert rows["(a) fp32 straightforward (torch defaults, all views decoded)"]["rel_l2_err"] < 1e-4  # fp32 agree
    assert 0 < rows["tolerance"]["rel_l2_err"] < 0.5  # rounding weights/input to bf16 moves the output


def test_quiet_loading_shows_no_progress_bar(replicas, capfd):
    from sparsevid import log
    from sparsevid.fixer.difix.prompt import encode_prompt

    folder, _ = replicas["difix"]
    quiet = log.is_quiet()
    log.set_quiet(True)
    try:
        encode_prompt(folder, "remove degradation")
    finally:
        log.set_quiet(quiet)
    assert "Loading" not in capfd.readouterr().err
    import transformers

    assert transformers.utils.logging.is_progress_bar_enabled()  # switched back on afterwards


def test_damaged_or_mismatched_weights_and_bad_option_values_fail_before_any_work(replicas, tmp_path, capsys,
                                                                                     monkeypatch):
    """A config that does not match its tensors gave a 50-line traceback after the pose stage; a truncated weight
    file, UNet weights in vae/, an option value out of range (timestep 5000, seed "abc", confidence_floor 2),
    --fixer.num-refs (which Difix ignored without a word) and --fixer.device cuda on a machine without one failed
    after the pose stage or with a traceback. Each is now one line, exit 2, before anything is written."""
    import shutil

    from sparsevid.cli import main
    from sparsevid.data.load import demo_path
    import sparsevid.devices as devices

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SPARSEVID_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    folder, _ = replicas["difix"]

    def copy(name: str) -> Path:
        shutil.copytree(folder, tmp_path / name)
        return tmp_path / name

    def one_line_error(weights: Path, *args: str) -> str:
        rc = main(["run", str(demo_path()), "-o", str(out), "--device", "cpu", "--fixer", "difix",
                   "--difix-weights", str(weights), *args])
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
        assert not out.exists()
        return lines[0]

    wide = copy("wide")
    cfg = json.loads((wide / "unet" / "config.json").read_text())
    cfg["in_channels"] = 8
    (wide / "unet" / "config.json").write_text(json.dumps(cfg))
    assert "Difix UNet weights do not match its config (conv_in.weight is" in one_line_error(wide)
    cut = copy("cut")
    blob = (cut / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    (cut / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(blob[: len(blob) // 2])
    assert "damaged or truncated" in one_line_error(cut)
    swapped = copy("swapped")
    shutil.copy(folder / "unet" / "diffusion_pytorch_model.safetensors", swapped / "vae")
    assert "not a Difix VAE" in one_line_error(swapped)
    assert "this is a file" in one_line_error(folder / "unet" / "diffusion_pytorch_model.safetensors")
    for options, says in (("{timestep: 5000}", "timestep: 5000 is not a whole number in 0..999"),
                          ("{seed: abc}", "seed: 'abc' is not a whole number"),
                          ("{confidence_floor: 2}", "confidence_floor: 2 is not a number in [0, 1]"),
                          ("{dtype: fp8}", "unknown dtype 'fp8'")):
        assert says in one_line_error(folder, "--fixer.options", options)
    assert "--fixer.options '{num_refs: 3}'" in one_line_error(folder, "--fixer.num-refs", "3")
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    assert "--fixer.device cuda: this machine has no CUDA GPU" in one_line_error(folder, "--fixer.device", "cuda")
    assert main(["run", str(demo_path()), "-o", str(out), "--device", "cpu", "--fixer", "difix", "--difix-weights",
                 str(folder), "--print-config"]) == 0  # the published layout passes every check


def test_resume_checks_the_weights_files_not_their_path(replicas, tmp_path, monkeypatch):
    """--resume compared the weights folder's path: weights replaced in place were taken for the same run, and the
    same weights through a link were refused. The files now decide (their sizes and pieces of their content: a copy
    is the same weights), and run.json names the folder the weights were read from."""
    import os
    import shutil

    from sparsevid.errors import SparsevidError as Err
    from sparsevid.pipeline import named_config, record_run

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder, _ = replicas["difix"]
    weights = tmp_path / "w"
    shutil.copytree(folder, weights)
    link = tmp_path / "link"
    link.symlink_to(weights)
    out = tmp_path / "out"
    out.mkdir()

    def record(w: Path, resume: bool) -> None:
        cfg = named_config("enhance_only", input=demo_path_for_tests(), output=out, keyframes=[0, 9, 19, 29],
                           device="cpu", resume=resume)
        cfg.fixer.name, cfg.fixer.difix_weights = "difix", str(w)
        record_run(cfg)

    record(weights, False)
    fp = json.loads((out / "fingerprint.json").read_text())
    assert "unet/diffusion_pytorch_model.safetensors" in fp["inputs"]["difix_weights"]
    record(link, True)  # the same files by another path
    copied = tmp_path / "copied"
    shutil.copytree(weights, copied, copy_function=shutil.copyfile)  # `cp` without -p: the files get new times
    record(copied, True)  # the same weights (they were refused as other weights)
    # a run folder of a sparsevid that marked weights by their times: the sizes decide
    kept = (out / "fingerprint.json").read_text()
    old = json.loads(kept)
    for mark in old["inputs"]["difix_weights"].values():
        mark[1] = "mtime 123"
    (out / "fingerprint.json").write_text(json.dumps(old))
    record(copied, True)
    (out / "fingerprint.json").write_text(kept)
    shutil.rmtree(weights)
    shutil.copytree(replicas["difix_ref"][0], weights)
    with pytest.raises(Err, match="input files differ"):
        record(weights, True)
    assert os.path.islink(link)


def demo_path_for_tests() -> Path:
    from sparsevid.data.load import demo_path

    return demo_path()


def test_weights_of_the_other_kind_are_named_in_a_warning(replicas, capsys):
    """`--fixer difix` with difix_ref weights switched to reference views without a word (run.json said "difix"),
    and `--fixer difix_ref` ran single-view weights with reference views they were not trained with."""
    get_fixer("difix", weights=str(replicas["difix_ref"][0]), device="cpu")
    assert "are nvidia/difix_ref's (a reference-view UNet)" in capsys.readouterr().err
    get_fixer("difix_ref", weights=str(replicas["difix"][0]), device="cpu")
    assert "look like the single-view nvidia/difix" in capsys.readouterr().err
    get_fixer("difix", weights=str(replicas["difix"][0]), device="cpu")
    err = capsys.readouterr().err
    assert "reference-view UNet" not in err and "single-view" not in err
