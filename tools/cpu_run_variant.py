"""One CPU run of the default configuration with config edits, and its scores (BENCHMARKS.md, coarse-to-fine):

    python tools/cpu_run_variant.py CASE OUT SCALE [train.coarse_fraction=0.5 ...]

CASE holds frame_0000.png ... frame_0029.png (inputs 0, 9, 19, 29); SCALE is the output scale; each edit is
``dotted.field=value`` on the RunConfig (the value converted to the field's type). Prints held-out PSNR / SSIM /
sharpness (the run's own metrics), training and total seconds and the quality estimate.
"""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sparsevid import log
from sparsevid.pipeline import named_config, run_pipeline
case, out, scale = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
log.set_quiet(True)
cfg = named_config("default", input=case, output=out, keyframes=[0, 9, 19, 29], device="cpu", overwrite=True)
cfg.scale, cfg.write_video, cfg.write_report = scale, False, False
for kv in sys.argv[4:]:
    k, v = kv.split("="); obj = cfg
    *path, leaf = k.split(".")
    for pth in path: obj = getattr(obj, pth)
    setattr(obj, leaf, type(getattr(obj, leaf))(v))
t0 = time.time(); res = run_pipeline(cfg)
m = json.load(open(out / "metrics.json")); st = json.load(open(out / "run.json"))["stage_seconds"]
print(f"{case.name} scale {scale} {sys.argv[4:]}: PSNR {m['psnr_heldout']:.3f} SSIM {m['ssim_heldout']:.4f} sharp {m['sharpness_heldout']:.3f} train {st['training']:.1f}s total {st['total']:.1f}s est {res.quality_estimate['psnr_heldout']}", flush=True)
