"""Difix / Difix-ref (Difix3D+, NVIDIA) with the published weights (``nvidia/difix``,
``nvidia/difix_ref`` on Hugging Face; research/non-commercial license).

Importing this package registers the fixers ``difix`` and ``difix_ref``; diffusers (the
optional extra ``pip install 'sparsevid[difix]'``) is imported only when a model is built.

    from sparsevid.fixer.difix import DifixPipeline
    pipe = DifixPipeline.from_pretrained("nvidia/difix_ref", device="cuda", dtype=torch.bfloat16)
    fixed = pipe(images_bchw_01, refs_brchw_01)
"""
from __future__ import annotations

from sparsevid.fixer.difix.fixer import DifixFixer, DifixRefFixer, nearest_refs

__all__ = ["DifixFixer", "DifixRefFixer", "DifixPipeline", "nearest_refs"]


def __getattr__(name: str):
    if name == "DifixPipeline":
        from sparsevid.fixer.difix.pipeline import DifixPipeline

        return DifixPipeline
    raise AttributeError(name)
