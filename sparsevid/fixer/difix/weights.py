"""Finding, checking and reading the published Difix weights (Hugging Face ``nvidia/difix``,
``nvidia/difix_ref``; NVIDIA research/non-commercial license).

Layout of a weight folder (diffusers format; only configs and safetensors are read, the
bundled Python files are never executed)::

    model_index.json
    scheduler/scheduler_config.json
    text_encoder/config.json + model.safetensors      (only to compute the prompt embedding once)
    tokenizer/vocab.json, merges.txt, ...
    unet/config.json + diffusion_pytorch_model.safetensors
    vae/config.json (+ lora_rank, gamma, ignore_skip) + diffusion_pytorch_model.safetensors
        (decoder LoRA stored as <module>.base_layer.*, <module>.lora_A.vae_skip.weight,
         <module>.lora_B.vae_skip.weight)

Public functions:
    resolve_weights(path_or_repo_id, allow_download) -> Path
    check_layout(folder) -> None (raises SparsevidError naming what is missing)
    read_json(path) -> dict
    load_safetensors(folder, name) -> dict[str, Tensor]
    merge_lora(state_dict, adapter, alpha) -> (state_dict, merged module names)
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from sparsevid.errors import SparsevidError

#: default Hugging Face repositories
REPO_DIFIX = "nvidia/difix"
REPO_DIFIX_REF = "nvidia/difix_ref"
LICENSE_NOTE = "the Difix weights are under NVIDIA's research/non-commercial license (see the model card)"
#: files the loader needs (besides the prompt embedding source)
REQUIRED = ("unet/config.json", "vae/config.json")
WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json",
                "diffusion_pytorch_model.fp16.safetensors")
#: patterns fetched when downloading (no Python files, no pickles)
DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.txt"]
#: a prompt-embedding file sparsevid may find next to the weights (written by users or tests)
PROMPT_CACHE_NAME = "sparsevid_prompt_embeds.safetensors"


def _where_to_put(repo_id: str, folder: Path | None = None, offer_download: bool = False) -> str:
    local = f"`hf download {repo_id} --local-dir {folder}`" if folder else \
        f"`hf download {repo_id} --local-dir DIR` and pass DIR"
    fetch = " (or let sparsevid fetch them: --fixer.options '{allow_download: true}')" if offer_download else ""
    return (f"download them into the Hugging Face cache with `hf download {repo_id}`, or to a "
            f"folder with {local}{fetch}; {LICENSE_NOTE}")


def looks_like_repo_id(s: str) -> bool:
    """``owner/name`` with Hugging Face's allowed characters and no such local path."""
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", s)) and not Path(s).exists()


def resolve_weights(path_or_repo_id: str | os.PathLike, allow_download: bool = False,
                    repo_hint: str = REPO_DIFIX) -> Path:
    """The local folder holding the weights.

    ``path_or_repo_id`` is a folder, or a Hugging Face repo id looked up in the local HF cache
    first (``local_files_only``); it is downloaded only if ``allow_download`` and the hub is not
    set offline (``HF_HUB_OFFLINE``). Raises :class:`SparsevidError` when nothing is found.
    """
    s = str(path_or_repo_id)
    if not looks_like_repo_id(s):
        folder = Path(s).expanduser()
        if folder.is_file():
            raise SparsevidError("Difix weights are a folder (model_index.json, unet/, vae/, ...); this is a file",
                                 path=folder, fix="pass the folder that holds unet/ and vae/ (as hf download "
                                                  f"{repo_hint} --local-dir DIR writes it)")
        if not folder.is_dir():
            raise SparsevidError("Difix weight folder not found", path=folder,
                                 fix=_where_to_put(repo_hint, folder))
        check_layout(folder, repo_hint)
        return folder
    try:
        import huggingface_hub
    except ImportError as e:
        raise SparsevidError(f"cannot look up {s!r} in the Hugging Face cache: huggingface_hub is missing",
                             fix="pip install 'sparsevid[difix]', or pass a local weight folder") from e
    from huggingface_hub.utils import LocalEntryNotFoundError
    folder: Path | None = None
    try:
        folder = Path(huggingface_hub.snapshot_download(s, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        folder = None
    if folder is None or _missing(folder):
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
        if not allow_download or offline:
            # "models/difix" reads as a repo id too: a user who meant a folder hears that there is none
            if folder is not None:
                why = f"incomplete in the Hugging Face cache ({folder}: missing {', '.join(_missing(folder))})"
            elif s in (REPO_DIFIX, REPO_DIFIX_REF):
                why = "not in the Hugging Face cache"
            else:
                why = f"neither a folder here ({Path(s).absolute()}) nor in the Hugging Face cache"
            raise SparsevidError(f"Difix weights {s!r} are {why}", fix=_where_to_put(s, offer_download=not offline))
        try:
            folder = Path(huggingface_hub.snapshot_download(s, allow_patterns=DOWNLOAD_PATTERNS))
        except Exception as e:  # network, auth, gated repo: all user-actionable
            raise SparsevidError(f"downloading Difix weights {s!r} failed: {e}",
                                 fix=_where_to_put(s)) from e
    check_layout(folder, s)
    return folder


def _weights_file(folder: Path) -> Path | None:
    for name in WEIGHT_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def _missing(folder: Path) -> list[str]:
    missing = [r for r in REQUIRED if not (folder / r).is_file()]
    for sub in ("unet", "vae"):
        if _weights_file(folder / sub) is None:
            missing.append(f"{sub}/diffusion_pytorch_model.safetensors")
    has_te = (folder / "text_encoder" / "config.json").is_file() and (folder / "tokenizer").is_dir()
    if not has_te and not (folder / PROMPT_CACHE_NAME).is_file():
        missing.append("text_encoder/ + tokenizer/ (or a cached prompt embedding)")
    return missing


def check_layout(folder: Path, repo_hint: str = REPO_DIFIX) -> None:
    """Raise a :class:`SparsevidError` listing the missing files when ``folder`` is incomplete."""
    missing = _missing(folder)
    if missing:
        raise SparsevidError(f"incomplete Difix weight folder: missing {', '.join(missing)}", path=folder,
                             fix=_where_to_put(repo_hint, folder))


def read_json(path: Path) -> dict:
    """A JSON file as a dict (a :class:`SparsevidError` names the file when it is unreadable)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SparsevidError(f"cannot read Difix config: {e}", path=path,
                             fix="re-download the weights (hf download nvidia/difix)") from e


def safetensors_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of every tensor of ``folder``'s diffusers weight file (single or sharded), from the
    headers alone (nothing is loaded); a truncated or damaged file is a one-line error."""
    from safetensors import safe_open

    path = _weights_file(folder)
    if path is None:
        raise SparsevidError("no diffusion_pytorch_model.safetensors", path=folder,
                             fix=_where_to_put(REPO_DIFIX, folder.parent))
    files = [folder / f for f in sorted(set(read_json(path).get("weight_map", {}).values()))] \
        if path.name.endswith(".index.json") else [path]
    shapes: dict[str, tuple[int, ...]] = {}
    for f in files:
        try:
            with safe_open(str(f), "pt") as st:
                shapes.update({k: tuple(st.get_slice(k).get_shape()) for k in st.keys()})
        except Exception as e:  # SafetensorError, OSError: an incomplete or foreign file
            raise SparsevidError(f"cannot read Difix weights: {str(e).strip()[:120]}", path=f,
                                 fix="the file is damaged or truncated; re-download it") from None
    return shapes


def load_safetensors(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of ``folder``'s diffusers weight file (single or sharded), on the CPU."""
    from safetensors.torch import load_file

    path = _weights_file(folder)
    if path is None:
        raise SparsevidError("no diffusion_pytorch_model.safetensors", path=folder,
                             fix=_where_to_put(REPO_DIFIX, folder.parent))
    try:
        if path.name.endswith(".index.json"):
            shards = sorted(set(read_json(path)["weight_map"].values()))
            sd: dict[str, torch.Tensor] = {}
            for shard in shards:
                sd.update(load_file(str(folder / shard), device="cpu"))
            return sd
        return load_file(str(path), device="cpu")
    except SparsevidError:
        raise
    except Exception as e:
        raise SparsevidError(f"cannot read Difix weights: {e}", path=path,
                             fix="the file is damaged or truncated; re-download it") from e


_DEPRECATED_ATTN = ((".query.", ".to_q."), (".key.", ".to_k."), (".value.", ".to_v."),
                    (".proj_attn.", ".to_out.0."))


def rename_deprecated_attention(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Old diffusers VAE attention names (query/key/value/proj_attn) -> to_q/to_k/to_v/to_out.0."""
    out = {}
    for k, v in sd.items():
        for old, new in _DEPRECATED_ATTN:
            k = k.replace(old, new)
        out[k] = v
    return out


def lora_delta(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The weight update ``B @ A`` of a LoRA pair (without the alpha/r scale).

    Linear: ``a`` [r, in], ``b`` [out, r] -> [out, in].
    Conv2d: ``a`` [r, in, kh, kw] (same kernel/stride/padding as the base conv), ``b``
    [out, r, 1, 1] -> [out, in, kh, kw].
    """
    a32, b32 = a.double(), b.double()
    if a.ndim == 2:
        return b32 @ a32
    if a.ndim == 4 and b.ndim == 4 and b.shape[2:] == (1, 1):
        return torch.einsum("or,rikl->oikl", b32.flatten(1), a32)
    raise ValueError(f"unsupported LoRA shapes A{tuple(a.shape)} B{tuple(b.shape)}")


def merge_lora(sd: dict[str, torch.Tensor], adapter: str = "vae_skip", alpha: float = 8.0,
               rank: int | None = None) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Fold a peft LoRA adapter into plain weights: ``W = W0 + (alpha / r) * B @ A``.

    Every ``<m>.base_layer.<p>`` becomes ``<m>.<p>``; ``<m>.lora_A.<adapter>.weight`` and
    ``<m>.lora_B.<adapter>.weight`` are merged into ``<m>.weight`` and dropped. ``r`` is read
    from the A matrix (and must equal ``rank`` when given). Returns the new state dict and the
    merged module names. Raises ``ValueError`` on a partial or inconsistent adapter.
    """
    out: dict[str, torch.Tensor] = {}
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    a_tag, b_tag = f".lora_A.{adapter}.weight", f".lora_B.{adapter}.weight"
    for k, v in sd.items():
        if k.endswith(a_tag):
            pairs.setdefault(k[: -len(a_tag)], {})["A"] = v
        elif k.endswith(b_tag):
            pairs.setdefault(k[: -len(b_tag)], {})["B"] = v
        elif ".lora_" in k or ".lora_magnitude_vector" in k:
            raise ValueError(f"unexpected LoRA key {k!r} (only adapter {adapter!r} with A/B weights is supported)")
        elif ".base_layer." in k:
            out[k.replace(".base_layer.", ".")] = v
        else:
            out[k] = v
    merged = []
    for mod, ab in sorted(pairs.items()):
        if set(ab) != {"A", "B"}:
            raise ValueError(f"LoRA module {mod!r} lacks its {'B' if 'A' in ab else 'A'} matrix")
        if f"{mod}.base_layer.weight" not in sd:
            raise ValueError(f"LoRA module {mod!r} has no {mod}.base_layer.weight")
        a, b = ab["A"], ab["B"]
        r = a.shape[0]
        if b.shape[1] != r or (rank is not None and r != rank):
            raise ValueError(f"LoRA module {mod!r}: rank {r} (A) vs {b.shape[1]} (B), config says {rank}")
        w0 = out[f"{mod}.weight"]
        delta = lora_delta(a, b)
        if delta.shape != w0.shape:
            raise ValueError(f"LoRA module {mod!r}: update {tuple(delta.shape)} does not fit weight {tuple(w0.shape)}")
        out[f"{mod}.weight"] = (w0.double() + (alpha / r) * delta).to(w0.dtype)
        merged.append(mod)
    return out, merged
