"""What the MP4's encoding costs: a run's frames against its video.mp4 re-encoded at several x264 CRFs, each scored
by the reference scorer, beside DIS flow (issue 12; BENCHMARKS.md, session 22).

    python tools/video_crf_probe.py CASE:RUN [CASE:RUN ...] --crf 18,15,12,10 [--score ../shared/bench/score.py]
        [--json OUT.json]

CASE is a folder of 30 frames (the ground truth), RUN a sparsevid run folder whose ``frames/`` hold its 30 output
frames. Each MP4 is written by :func:`sparsevid.video.io.write_video` (the product's encoder) and read back as
``score.py --pred VIDEO`` reads it (OpenCV's FFmpeg decoder); the frames are scored as ``score.py --pred
RUN/frames``. Printed per case: held-out PSNR / SSIM / sharpness, and the file's size in MB per second of video.

``--swscale`` also writes each CRF's MP4 with the RGB -> YUV conversion write_video used before session 26 (ffmpeg's
swscale through PyAV's ``reformat``; the product now uses :func:`sparsevid.video.io.rgb_to_yuv420p`), the x264
settings otherwise the same.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.video.io import COLOUR_TAGS, VideoConfig, pad_edges, write_video  # noqa: E402

DEFAULT_SCORER = Path(__file__).resolve().parents[2] / "shared" / "bench" / "score.py"


def load_scorer(path: Path):
    spec = importlib.util.spec_from_file_location("score", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_video_swscale(frames, path: Path, crf: int) -> Path:
    """write_video's encoding before session 26: swscale converts RGB to yuv420p (BT.601), 30 fps."""
    import av
    import numpy as np

    with av.open(str(path), mode="w", format="mp4") as container:
        h, w = frames[0].shape[:2]
        h, w = h + h % 2, w + w % 2
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": VideoConfig.preset, "x264-params": COLOUR_TAGS}
        for k, img in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(pad_edges(img, h, w)), format="rgb24")
            vf = vf.reformat(format="yuv420p", dst_colorspace="itu601")
            vf.pts = k
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def probe(scorer, case: Path, run: Path, crfs: list[int], swscale: bool = False) -> dict:
    gt = scorer.load_case(str(case))
    frames_dir = run / "frames"
    frames = scorer.load_pred(str(frames_dir), gt[0].shape)
    keep = ("psnr_heldout", "ssim_heldout", "sharpness_heldout")
    row = {"case": case.name, "size": f"{gt[0].shape[1]}x{gt[0].shape[0]}",
           "dis_flow": {k: scorer.score(gt, scorer.peer_flow(gt))[k] for k in keep},
           "frames": {k: scorer.score(gt, frames)[k] for k in keep}}
    def scored(path: Path) -> dict:
        s = scorer.score(gt, scorer.load_pred(str(path), gt[0].shape))
        return {k: s[k] for k in keep} | {"mb_per_s": path.stat().st_size / 1e6 / (len(frames) / 30)}

    with tempfile.TemporaryDirectory() as tmp:
        for crf in crfs:
            row[f"crf{crf}"] = scored(write_video(frames, Path(tmp) / f"crf{crf}.mp4", 30, crf=crf))
            if swscale:
                row[f"crf{crf} swscale"] = scored(write_video_swscale(frames, Path(tmp) / f"crf{crf}_swscale.mp4", crf))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", metavar="CASE:RUN")
    ap.add_argument("--crf", default="18,15,12,10")
    ap.add_argument("--score", type=Path, default=DEFAULT_SCORER)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--swscale", action="store_true", help="also encode with the conversion used before session 26")
    a = ap.parse_args()
    scorer = load_scorer(a.score)
    crfs = [int(c) for c in a.crf.split(",")]
    rows = []
    for pair in a.pairs:
        case, run = (Path(p) for p in pair.split(":", 1))
        r = probe(scorer, case, run, crfs, a.swscale)
        rows.append(r)
        cells = [f"{k} {v['psnr_heldout']:.3f} / {v['ssim_heldout']:.4f} / {v['sharpness_heldout']:.2f}"
                 + (f" ({v['mb_per_s']:.2f} MB/s)" if "mb_per_s" in v else "")
                 for k, v in r.items() if isinstance(v, dict)]
        print(f"{r['case']} {r['size']}: " + "; ".join(cells), flush=True)
    if a.json:
        a.json.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
