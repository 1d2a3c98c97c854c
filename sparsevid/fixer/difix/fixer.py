"""``DifixFixer``: the :class:`~sparsevid.fixer.base.Fixer` backed by the published Difix weights.

Registered as ``difix`` (``nvidia/difix``, single view) and ``difix_ref`` (``nvidia/difix_ref``,
target + nearest reference views through joint self-attention). Weights come from
``weights=`` (a folder or a Hugging Face repo id; the local HF cache is looked up first).
"""
from __future__ import annotations

import torch

from sparsevid import log
from sparsevid.devices import resolve_device
from sparsevid.errors import SparsevidError
from sparsevid.fixer.base import Fixer, FixRequest, FixResult, fixer_device, register_fixer
from sparsevid.fixer.difix.prompt import DEFAULT_PROMPT
from sparsevid.fixer.difix.weights import REPO_DIFIX, REPO_DIFIX_REF
from sparsevid.geometry import camera_distances, median_pair_spacing


def nearest_refs(c2ws: torch.Tensor, ref_c2ws: torch.Tensor, k: int) -> torch.Tensor:
    """Indices [B, k] of the ``k`` references closest to each camera (``c2ws`` [B, 4, 4], ``ref_c2ws``
    [R, 4, 4]): the :func:`~sparsevid.geometry.camera_distances` metric with the centre distance in
    units of the median distance between the references and the angle between the optical axes in
    radians (roll does not matter to the reference choice)."""
    k = min(k, ref_c2ws.shape[0])
    d = camera_distances(c2ws, ref_c2ws, position_unit=median_pair_spacing(ref_c2ws), rotation_unit=1.0,
                         angle="axis")
    return d.topk(k, dim=1, largest=False).indices


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """"auto" -> bfloat16 on CUDA (fp16 where bf16 is unsupported), float32 on CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    names = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if dtype not in names:
        raise SparsevidError(f"unknown dtype {dtype!r} for the Difix fixer", fix=f"use one of auto, {', '.join(names)}")
    return names[dtype]


def check_options(options: dict, steps: int = 1000) -> None:
    """The values of ``--fixer.options`` for the Difix fixers, one line each (``steps``: the length of the weights'
    DDPM schedule, which bounds ``timestep``)."""
    examples = {"timestep": 199, "seed": 0, "num_refs": 1, "confidence_floor": 0.5, "compile": "true",
                "allow_download": "true", "prompt": "remove degradation"}

    def bad(name: str, want: str):
        example = "{" + f"{name}: {examples[name]}" + "}"
        return SparsevidError(f"--fixer.options {name}: {options[name]!r} is not {want}",
                              fix=f"give {name} as {want}, e.g. --fixer.options '{example}'")

    for name, lo, hi in (("timestep", 0, steps - 1), ("seed", 0, 2**63 - 1), ("num_refs", 0, 64)):
        if name in options:
            v = options[name]
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise bad(name, f"a whole number in {lo}..{hi}")
    if "confidence_floor" in options:
        v = options["confidence_floor"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise bad("confidence_floor", "a number in [0, 1]")
    for name in ("compile", "allow_download"):
        if name in options and not isinstance(options[name], bool):
            raise bad(name, "true or false")
    if "prompt" in options and not (isinstance(options["prompt"], str) and options["prompt"].strip()):
        raise bad("prompt", "a text")
    if "dtype" in options:
        resolve_dtype(options["dtype"], torch.device("cpu"))


@register_fixer("difix")
class DifixFixer(Fixer):
    """Difix3D's single-step fixer with the published weights.

    Args:
        weights: weight folder or HF repo id (default ``nvidia/difix``, or ``nvidia/difix_ref``
            for ``difix_ref``).
        device: "auto", "cuda", "cpu" or a torch.device (see :func:`sparsevid.devices.resolve_device`).
        dtype: "auto" (bf16 on CUDA, fp32 on CPU), "fp32", "bf16", "fp16".
        num_refs: reference views per novel view for difix_ref (nearest by pose); 0 = none.
        allow_download: let huggingface_hub download missing weights (you accept their
            research/non-commercial license by doing so).
        compile: ``torch.compile`` the networks (CUDA; first call per resolution is slow).
        confidence_floor: confidence of fixed pixels where the render was empty (alpha 0);
            confidence = valid * (floor + (1 - floor) * alpha).
        prompt, timestep: the model's fixed prompt and denoising step.
        pipeline: an already built :class:`DifixPipeline` (weights are then not loaded).
        seed: seed of the posterior sampling when the pipeline samples.
    """

    default_repo = REPO_DIFIX
    expects_refs = False
    reads_weights = True

    def __init__(self, weights: str | None = None, device: str = "auto", dtype: str | torch.dtype = "auto",
                 num_refs: int = 1, allow_download: bool = False, compile: bool = False,
                 confidence_floor: float = 0.5, prompt: str = DEFAULT_PROMPT, timestep: int = 199,
                 pipeline=None, seed: int = 0):
        if not 0.0 <= confidence_floor <= 1.0:
            raise SparsevidError(f"confidence_floor must be in [0, 1], got {confidence_floor}")
        self.num_refs = int(num_refs)
        self.confidence_floor = float(confidence_floor)
        self.seed = int(seed)
        if pipeline is None:
            from sparsevid.fixer.difix.pipeline import DifixPipeline

            dev = resolve_device(device)
            dt = resolve_dtype(dtype, dev)
            ref = True if self.expects_refs else None
            pipeline = DifixPipeline.from_pretrained(weights or self.default_repo, device=dev, dtype=dt,
                                                     reference_attention=ref, allow_download=allow_download,
                                                     prompt=prompt, timestep=timestep)
            self._say_kind(pipeline, str(weights or self.default_repo))
            if dev.type == "cpu":
                log.warn("difix: running on the CPU is very slow (minutes per image at full size); use CUDA")
            if compile and dev.type == "cuda":
                pipeline.optimize(channels_last=True, compile=True)
            elif dev.type == "cuda":
                pipeline.optimize(channels_last=True, compile=False)
        self.pipe = pipeline

    @classmethod
    def check_config(cls, config) -> None:
        """Before any work: the weights are found (a complete folder, or the repo in the Hugging Face cache; with the
        option ``allow_download`` they are fetched here) and whole, their configs matching their tensors
        (:func:`~sparsevid.fixer.difix.pipeline.check_weights`); the options' values are ones the fixer takes; and
        ``--fixer.num-refs`` (the reprojection fixer's) is left at its default: the Difix fixers take their
        reference count as the option ``num_refs``."""
        from sparsevid.fixer.base import FixerConfig
        from sparsevid.fixer.difix.pipeline import check_weights, schedule_length

        default_refs = FixerConfig.__dataclass_fields__["num_refs"].default
        if config.num_refs != default_refs:
            raise SparsevidError(f"--fixer.num-refs {config.num_refs} is the reprojection fixer's; {config.name} "
                                 "takes its reference views as an option",
                                 fix=f"use --fixer.options '{{num_refs: {config.num_refs}}}' (difix_ref; 1 by "
                                     "default, as it was trained) and leave --fixer.num-refs out")
        folder = cls.weights_folder(config)
        check_options(config.options, schedule_length(folder))
        check_weights(folder)

    @classmethod
    def weights_folder(cls, config):
        """The local folder of ``config``'s weights (a Hugging Face cache snapshot for a repo id; with the option
        ``allow_download``, fetched when missing)."""
        from sparsevid.fixer.difix.weights import resolve_weights

        return resolve_weights(config.difix_weights or cls.default_repo,
                               allow_download=bool(config.options.get("allow_download", False)),
                               repo_hint=cls.default_repo)

    @classmethod
    def config_kwargs(cls, config, device=None) -> dict:
        """``weights`` = ``config.difix_weights``; ``device`` = ``config.device``, "auto" = the trainer's."""
        return {"weights": config.difix_weights, "device": fixer_device(config, device)}

    def _say_kind(self, pipeline, given: str) -> None:
        """One warning line when the weights are not the kind this fixer is for: single-view weights run as
        ``difix_ref`` get reference views they were not trained with; ``difix_ref`` weights run as ``difix`` run
        with their reference views (as ``difix_ref``)."""
        from pathlib import Path

        from sparsevid.fixer.difix.pipeline import detect_reference
        from sparsevid.fixer.difix.weights import looks_like_repo_id

        source = Path(getattr(pipeline, "source", "") or given)
        is_ref = detect_reference(source, given if looks_like_repo_id(given) else "")
        if self.expects_refs and not is_ref:
            log.warn(f"difix_ref: the weights {given} look like the single-view nvidia/difix (no reference-view UNet); "
                     "they run with reference views they were not trained with -> use --fixer difix for them")
        elif not self.expects_refs and pipeline.reference_attention:
            how = (f"run with {self.num_refs} reference view{'s' if self.num_refs != 1 else ''} per view, as --fixer "
                   "difix_ref does" if self.num_refs > 0 else "run without reference views (num_refs 0)")
            log.warn(f"difix: the weights {given} are nvidia/difix_ref's (a reference-view UNet): they {how} -> say "
                     "--fixer difix_ref, or use the nvidia/difix weights")

    @property
    def weights_source(self) -> str | None:
        """The folder the weights were read from (a Hugging Face cache snapshot names its revision), or None."""
        return getattr(self.pipe, "source", None)

    @property
    def uses_refs(self) -> bool:
        return self.pipe.reference_attention and self.num_refs > 0

    def fix(self, request: FixRequest) -> FixResult:
        renders = request.renders
        images = renders.permute(0, 3, 1, 2)
        picked = None
        gen = None
        if self.pipe.sample_posterior:
            gen = torch.Generator(device=self.pipe.device).manual_seed(self.seed)
        if self.uses_refs and len(request.refs) > 0:
            picked = nearest_refs(request.c2ws, request.refs.c2ws.to(request.c2ws.device), self.num_refs)
            pool = request.refs.images.to(renders.device).permute(0, 3, 1, 2)  # [R, 3, H, W]
            fixed = self.pipe.fix_with_pool(images, pool, picked, generator=gen)
        else:
            fixed = self.pipe(images, None, generator=gen)
        fixed = fixed.permute(0, 2, 3, 1).to(renders.device, renders.dtype)
        one = torch.ones_like(renders[..., :1])
        valid = request.valid.to(renders.dtype) if request.valid is not None else one
        alpha = request.alpha.to(renders.dtype).clamp(0, 1) if request.alpha is not None else one
        fixed = valid * fixed + (1.0 - valid) * renders
        conf = (valid * (self.confidence_floor + (1.0 - self.confidence_floor) * alpha)).clamp(0, 1)
        extras = {"refs": picked} if picked is not None else {}
        return FixResult(fixed, conf, extras)


@register_fixer("difix_ref")
class DifixRefFixer(DifixFixer):
    """:class:`DifixFixer` with the reference-view model (``nvidia/difix_ref``)."""

    default_repo = REPO_DIFIX_REF
    expects_refs = True
