"""A clip as a phone records it, from a folder of frames: held upright (stored on its side with a display matrix) and
HDR (10-bit BT.2020, HLG or PQ), to check that `sparsevid run` reads phone clips as players show them (BENCHMARKS.md,
session 22).

    python tools/phone_clip.py CASE OUT [--portrait] [--hdr hlg|pq|none] [--crf 4] [--drop 5,14]

CASE holds frame_0000.png ... (landscape, as a test case). Writes OUT/clip.mov and OUT/truth/frame_NNNN.png, the frames
a viewer sees (turned to portrait with ``--portrait``), to score against:

    sparsevid run OUT/clip.mov --keyframes 0,9,19,29 -o RUN
    python ../shared/bench/score.py OUT/truth --pred RUN/frames
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.data.hdr import sdr_to_hdr  # noqa: E402
from sparsevid.video.io import read_frames, write_frames  # noqa: E402

TRC = {"hlg": ("HLG", "arib-std-b67"), "pq": ("PQ", "smpte2084")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--portrait", action="store_true", help="the viewer sees the frames turned a quarter turn "
                                                            "clockwise; the file stores them as given, with a -90 "
                                                            "degree display matrix (an iPhone held upright)")
    ap.add_argument("--hdr", choices=("hlg", "pq", "none"), default="hlg")
    ap.add_argument("--crf", type=int, default=4)
    ap.add_argument("--drop", default="", metavar="I,J", help="frames the phone dropped: not in the file, the others "
                                                             "keep their time stamps (a variable frame rate)")
    a = ap.parse_args()
    import av

    frames = read_frames(a.case)
    stored = [frames[i] for i in sorted(frames)]
    seen = [np.ascontiguousarray(np.rot90(f, k=-1)) if a.portrait else f for f in stored]
    write_frames(seen, a.out / "truth")
    h, w = stored[0].shape[:2]
    with av.open(str(a.out / "clip.mov"), "w", format="mov") as c:
        st = c.add_stream("libx264", rate=30)
        st.width, st.height = w - w % 2, h - h % 2
        if a.hdr == "none":
            st.pix_fmt, params = "yuv420p", "colorprim=bt709:transfer=bt709:colormatrix=bt709"
        else:
            st.pix_fmt, params = "yuv420p10le", f"colorprim=bt2020:transfer={TRC[a.hdr][1]}:colormatrix=bt2020nc"
        st.options = {"crf": str(a.crf), "x264-params": params}
        if a.portrait:
            st.set_display_rotation(-90)
        drop = {int(k) for k in a.drop.split(",") if k}
        for k, img in enumerate(stored):
            if k in drop:
                continue
            img = img[: st.height, : st.width]
            if a.hdr == "none":
                vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p", dst_colorspace="itu709")
            else:
                vf = av.VideoFrame.from_ndarray(sdr_to_hdr(img, TRC[a.hdr][0]), format="rgb48le").reformat(
                    format="yuv420p10le", dst_colorspace="bt2020")
            vf.pts = k
            for pk in st.encode(vf):
                c.mux(pk)
        for pk in st.encode():
            c.mux(pk)
    print(f"{a.out / 'clip.mov'}: {len(stored) - len(drop)} frames, stored {w}x{h}, seen {seen[0].shape[1]}x{seen[0].shape[0]}, "
          f"{a.hdr.upper() if a.hdr != 'none' else 'SDR'}; truth in {a.out / 'truth'}")


if __name__ == "__main__":
    main()
