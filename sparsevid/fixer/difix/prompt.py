"""The Difix prompt embedding ("remove degradation"), computed once and cached.

The text encoder is not needed at run time: the embedding of the fixed prompt is read from
(1) ``<weights>/sparsevid_prompt_embeds.safetensors`` if it holds this prompt, else (2) the user
cache (``$SPARSEVID_CACHE`` or ``~/.cache/sparsevid``) keyed by the prompt and the text
encoder's weight file, else (3) computed with the folder's ``text_encoder/`` + ``tokenizer/``
(transformers, local files only) and written to the user cache.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import torch

from sparsevid import log
from sparsevid.errors import SparsevidError
from sparsevid.fixer.difix.weights import LICENSE_NOTE, PROMPT_CACHE_NAME
from sparsevid.io_utils import atomic_save

DEFAULT_PROMPT = "remove degradation"


def _key(prompt: str) -> str:
    return "prompt_" + hashlib.sha256(prompt.encode()).hexdigest()[:16]


def user_cache_dir() -> Path:
    """Where sparsevid caches derived files: :func:`sparsevid.caches.cache_root` ``/ "difix"``."""
    from sparsevid.caches import cache_root

    return cache_root() / "difix"


def _encoder_fingerprint(folder: Path) -> str:
    te = folder / "text_encoder"
    parts = []
    for p in sorted(te.glob("*.json")) + sorted(te.glob("*.safetensors")):
        st = p.stat()
        parts.append(f"{p.name}:{st.st_size}")
    parts.append(str(folder.resolve()))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def read_prompt_file(path: Path, prompt: str) -> torch.Tensor | None:
    """The embedding [1, T, D] of ``prompt`` stored in ``path``, or None. A damaged file raises a one-line
    :class:`SparsevidError`."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.get_tensor(_key(prompt)) if _key(prompt) in f.keys() else None
    except Exception as e:  # safetensors' own errors: a truncated or foreign file
        raise SparsevidError(f"cannot read the prompt embedding file: {e}", path=path,
                             fix="delete it (sparsevid makes it again from the weights' text_encoder/), or "
                                 "re-download the weights (hf download nvidia/difix)") from e


def write_prompt_file(path: Path, embeds: dict[str, torch.Tensor]) -> None:
    """Write ``{prompt: [1, T, D]}`` embeddings to ``path`` (atomically, merged with what is there)."""
    from safetensors.torch import load_file, save_file

    data = load_file(str(path)) if path.is_file() else {}
    data.update({_key(p): e.detach().float().cpu().contiguous() for p, e in embeds.items()})
    meta = {_key(p): p for p in embeds}
    atomic_save(path, lambda tmp: save_file(data, str(tmp), metadata=meta))


def encode_prompt(folder: Path, prompt: str) -> torch.Tensor:
    """Run the folder's CLIP text encoder on ``prompt`` -> [1, 77, D] float32 (last hidden state,
    padded to the tokenizer's max length, as the Stable Diffusion pipelines do)."""
    from sparsevid.fixer.difix._deps import require

    transformers = require("transformers")
    bars = transformers.utils.logging
    was_on = bars.is_progress_bar_enabled()
    if log.is_quiet() or not sys.stderr.isatty():  # -q, or a log file: not transformers' "Loading weights" bar
        bars.disable_progress_bar()
    try:
        tok = transformers.CLIPTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
        te = transformers.CLIPTextModel.from_pretrained(str(folder / "text_encoder"), local_files_only=True,
                                                        use_safetensors=True)
    except SparsevidError:
        raise
    except Exception as e:
        raise SparsevidError(f"cannot load the Difix text encoder/tokenizer: {e}", path=folder,
                             fix="re-download the weights (hf download nvidia/difix)") from e
    finally:
        if was_on:
            bars.enable_progress_bar()
    ids = tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids
    with torch.no_grad():
        return te.eval()(ids)[0].float()


def prompt_embedding(folder: Path, prompt: str = DEFAULT_PROMPT) -> torch.Tensor:
    """[1, T, D] float32 embedding of ``prompt`` for the weights in ``folder`` (see module doc)."""
    local = read_prompt_file(folder / PROMPT_CACHE_NAME, prompt)
    if local is not None:
        return local.float()
    has_te = (folder / "text_encoder" / "config.json").is_file() and (folder / "tokenizer").is_dir()
    cache = user_cache_dir() / f"{_encoder_fingerprint(folder)}.safetensors" if has_te else None
    if cache is not None:
        try:
            cached = read_prompt_file(cache, prompt)
        except SparsevidError:  # our own cache, damaged (a crash mid-write elsewhere): made again below
            log.info(f"difix: the cached prompt embedding {cache} is damaged; computing it again")
            cache.unlink(missing_ok=True)
            cached = None
        if cached is not None:
            return cached.float()
    if not has_te:
        raise SparsevidError(
            f"the Difix weights ship no text encoder and no cached embedding of the prompt {prompt!r}",
            path=folder, fix=f"use the complete nvidia/difix folder (text_encoder/ and tokenizer/ included) "
                             f"or put the embedding into {PROMPT_CACHE_NAME}; {LICENSE_NOTE}")
    log.info(f"difix: computing the prompt embedding once (cached in {cache})")
    emb = encode_prompt(folder, prompt)
    try:
        write_prompt_file(cache, {prompt: emb})
    except OSError as e:
        log.warn(f"difix: could not cache the prompt embedding in {cache}: {e}")
    return emb
