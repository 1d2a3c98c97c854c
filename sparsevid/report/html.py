"""``OUT/report.html``: one self-contained page that shows what a run made and how well.

It opens from disk with no server and no network: the video is a base64 ``data:`` URI, images are
base64 JPEG, plots are inline SVG made with matplotlib, and the page has no external style sheet,
font or script. Sections, each left out when its inputs are missing:

* the video (``OUT/video.mp4``; else the frames encoded small);
* the input frames on a timeline spanning the whole output (thumbnails at their times; clicking one
  seeks the video there);
* with ground truth: a GT | output | error side-by-side video and per-frame PSNR / SSIM / sharpness
  plots of the output against the flow peer (DIS optical flow between the inputs) -- the per-frame
  metrics of the output come from ``OUT/metrics.json``; the ground-truth frames are not in OUT, so
  the caller passes them (``gt_frames``; ``sparsevid report OUT --gt CASE``);
* the quality estimate (``OUT/quality.json``, leave-one-out), beside the measured numbers;
* the pose report (``run.json`` ``poses``, else ``OUT/poses/poses_report.json``): cameras, points,
  focal length and its source, the attempt kept; or the message of a failed pose stage;
* stage timings (``run.json`` ``stage_seconds``) as a table and a bar chart;
* the output files, as relative links.

A section that fails on an unexpected file is left out with a warning: the report never fails a run.
"""
from __future__ import annotations

import base64
import datetime
import html
import io
import json
import re
import tempfile
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np

from sparsevid import log
from sparsevid.io_utils import atomic_write_text
from sparsevid.poses.sfm import POSES_REPORT

REPORT_NAME = "report.html"
#: width in pixels of the input thumbnails on the timeline
THUMB_WIDTH = 192
#: width in pixels of each panel of the GT | output | error video
PANEL_WIDTH = 320
#: width in pixels (at most) of the video encoded from the frames when video.mp4 is missing or too large
FALLBACK_VIDEO_WIDTH = 640
#: a video.mp4 larger than this is not embedded as is: the frames are re-encoded small instead
MAX_EMBEDDED_VIDEO_BYTES = 40_000_000
#: the error panel shows |output - GT| times this
ERROR_GAIN = 4
_FRAME_RE = re.compile(r"^frame_(\d+)\.png$")
_COLORS = {"sparsevid": "#d62728", "dis_flow": "#1f77b4"}
_PEER_COLORS = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


# ---------------------------------------------------------------------------------------------
# what the report reads
# ---------------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        log.warn(f"report: {path} is unreadable ({e}); its section is left out")
        return None
    return data if isinstance(data, dict) else None


def _fraction(value, default: Fraction | None = None) -> Fraction | None:
    try:
        from sparsevid.data.timebase import fps_fraction

        return fps_fraction(value) if value is not None else default
    except Exception:
        return default


@dataclass
class RunFolder:
    """The facts of one output folder that the report shows (read by :meth:`read`)."""

    out: Path
    run: dict | None = None
    quality: dict | None = None
    metrics: dict | None = None
    cameras: dict | None = None
    poses_report: dict | None = None
    frame_files: dict[int, Path] = field(default_factory=dict)
    num_frames: int = 0
    out_fps: Fraction = Fraction(30)
    scene_fps: Fraction = Fraction(30)
    input_indices: list[int] = field(default_factory=list)

    @staticmethod
    def read(out: Path) -> "RunFolder":
        out = Path(out)
        f = RunFolder(out)
        f.run = _read_json(out / "run.json")
        f.quality = _read_json(out / "quality.json")
        f.metrics = _read_json(out / "metrics.json")
        f.cameras = _read_json(out / "cameras.json")
        f.poses_report = _read_json(out / "poses" / POSES_REPORT)
        if f.quality is None and f.run is not None and isinstance(f.run.get("quality_estimate"), dict):
            f.quality = f.run["quality_estimate"]
        frames_dir = out / "frames"
        if frames_dir.is_dir():
            for p in frames_dir.iterdir():
                m = _FRAME_RE.match(p.name)
                if m:
                    f.frame_files[int(m.group(1))] = p
        run, cams = f.run or {}, f.cameras or {}
        f.out_fps = _fraction(run.get("fps"), None) or _fraction(cams.get("fps"), None) or Fraction(30)
        f.num_frames = (len(f.frame_files) or int(run.get("num_frames") or 0) or int(cams.get("num_frames") or 0)
                        or int((f.metrics or {}).get("num_pred_frames") or 0))
        f.scene_fps = f._scene_fps()
        f.input_indices = f._input_indices()
        return f

    @property
    def window(self) -> tuple[int, int, str] | None:
        """(the video's own frame number of the run's frame 0, of its last frame read, the flags) of a run whose
        input was a ``--start``/``--end`` window of a video (run.json ``window``); None otherwise."""
        w = (self.run or {}).get("window")
        if not isinstance(w, dict) or not isinstance(w.get("first_frame"), int):
            return None
        flags = " ".join(f"--{k} {w[k]}" for k in ("start", "end") if w.get(k) is not None)
        last = w.get("last_frame")
        return w["first_frame"], last if isinstance(last, int) else w["first_frame"], flags

    def _scene_fps(self) -> Fraction:
        """The source video's frame rate: run.json ``source_fps`` when recorded, else cameras.json
        (source_index / time), else the --fps of the run, else the output rate (the default output
        rate is the source's)."""
        recorded = _fraction((self.run or {}).get("source_fps"), None)
        if recorded:
            return recorded
        for fr in (self.cameras or {}).get("frames", []):
            try:
                t, s = float(fr["time"]), float(fr["source_index"])
            except (KeyError, TypeError, ValueError):
                continue
            if t > 0 and s > 0:
                return Fraction(s / t).limit_denominator(1001)
        cfg = (self.run or {}).get("config") or {}
        return _fraction(cfg.get("fps"), None) or self.out_fps

    def _input_indices(self) -> list[int]:
        recorded = (self.run or {}).get("input_indices")  # the run's own record (runs since session 39)
        if isinstance(recorded, list) and recorded and all(isinstance(i, int) for i in recorded):
            return sorted(set(recorded))
        frames = (self.cameras or {}).get("frames", [])
        keys = [int(round(float(fr["source_index"]))) for fr in frames
                if fr.get("is_input") and fr.get("source_index") is not None]
        if keys:
            return sorted(set(keys))
        for src in ((self.metrics or {}).get("input_indices"), ((self.run or {}).get("config") or {}).get("keyframes"),
                    (self.poses_report or {}).get("input_indices")):
            if isinstance(src, list) and src:
                return sorted(set(int(i) for i in src))
        return []

    @property
    def duration(self) -> float:
        return float(self.num_frames / self.out_fps) if self.num_frames else 0.0

    def source_index(self, k: int) -> int | None:
        """The source frame output frame ``k`` shows (None between source frames)."""
        pos = Fraction(k) / self.out_fps * self.scene_fps
        return int(pos) if pos.denominator == 1 else None

    def output_frame_at(self, seconds: float) -> int:
        return int(min(max(round(seconds * float(self.out_fps)), 0), max(self.num_frames - 1, 0)))

    def frame(self, k: int) -> np.ndarray | None:
        from sparsevid.video.io import read_image

        p = self.frame_files.get(k)
        return read_image(p) if p is not None else None

    def frames(self) -> list[np.ndarray]:
        from sparsevid.video.io import read_image

        return [read_image(self.frame_files[k]) for k in sorted(self.frame_files)]

    @property
    def pose_report(self) -> dict | None:
        run_poses = (self.run or {}).get("poses")
        return run_poses if isinstance(run_poses, dict) else self.poses_report


# ---------------------------------------------------------------------------------------------
# embedding helpers
# ---------------------------------------------------------------------------------------------
def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _b64(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _resize_width(img: np.ndarray, width: int) -> np.ndarray:
    h, w = img.shape[:2]
    if w <= width:
        return img
    return cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def _fit_width(img: np.ndarray, width: int) -> np.ndarray:
    """Resize to exactly ``width`` pixels wide (area filter down, bilinear up), keeping the aspect."""
    h, w = img.shape[:2]
    if w == width:
        return img
    interp = cv2.INTER_AREA if w > width else cv2.INTER_LINEAR
    return cv2.resize(img, (width, max(2, round(h * width / w))), interpolation=interp)


def _jpeg_uri(img: np.ndarray, width: int, quality: int = 82) -> str:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(_resize_width(img, width)[..., ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode a JPEG")
    return _b64(buf.tobytes(), "image/jpeg")


def _video_uri_from_frames(frames: Sequence[np.ndarray], fps: Fraction, crf: int = 23) -> str:
    from sparsevid.video.io import write_video

    with tempfile.TemporaryDirectory(prefix="sparsevid-report-") as tmp:
        path = write_video(frames, Path(tmp) / "clip.mp4", fps, crf=crf, announce_padding=False)  # a page's video
        return _b64(path.read_bytes(), "video/mp4")


def _svg(fig) -> str:
    """A matplotlib figure as inline SVG markup (text kept as text, no XML prologue, no
    namespace URLs: inline SVG in HTML needs none)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "sparsevid"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = svg.replace("xlink:href=", "href=")
    return svg


def _figure(width_in: float, height_in: float, rows: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in))
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, axes


def _fmt(v, digits: int = 2, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v)}{unit}"
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "–"
        return f"{float(v):.{digits}f}{unit}"
    return str(v)


def _table(rows: Sequence[Sequence], header: Sequence[str] | None = None, cls: str = "kv") -> str:
    out = [f'<table class="{cls}">']
    if header:
        out.append("<tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>")
    for r in rows:
        cells = []
        for i, c in enumerate(r):
            tag = "th" if (cls == "kv" and i == 0) else "td"
            cells.append(f"<{tag}>{_esc(c)}</{tag}>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_esc(title)}</h2>{body}</section>'


# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------
def _header(f: RunFolder) -> str:
    run = f.run or {}
    cfg = run.get("config") or {}
    facts = [("input", cfg.get("input") or "embedded demo"), ("output frames", f.num_frames),
             ("output fps", f"{float(f.out_fps):.3f}"), ("duration", f"{f.duration:.3f} s"),
             ("input frames", ", ".join(map(str, f.input_indices)) or "–")]
    if f.window is not None:  # frame numbers on the page count from the window's first frame
        first, last, flags = f.window
        facts.insert(1, ("window", f"{flags}: the video's frames {first}-{last}" + (
            f"; frame numbers on this page count from its frame {first} as 0" if first else "")))
    if f.quality and f.quality.get("route"):
        facts.append(("route", f.quality["route"]))
    if run.get("num_gaussians") is not None:  # a 3D model the leave-one-out left out of the video: said beside it
        unused = bool(f.quality and f.quality.get("route") and "3D" not in str(f.quality["route"]))
        facts.append(("Gaussians", f"{int(run['num_gaussians']):,}" + (" (not in the video)" if unused else "")))
    if run.get("device"):
        facts.append(("device", run["device"]))
    if interrupted_text(run):
        facts.append(("status", interrupted_text(run)))
    elif run.get("status") and run.get("status") not in ("done", "reporting"):  # "reporting": this very page
        facts.append(("status", run["status"]))
    version = (run.get("versions") or {}).get("sparsevid")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    sub = f"written {stamp}" + (f" by sparsevid {version}" if version else "")
    return (f'<header><h1>sparsevid report: {_esc(f.out.name)}</h1><p class="sub">{_esc(sub)}</p>'
            + _table(facts) + "</header>")


def _video_section(f: RunFolder) -> str | None:
    mp4 = f.out / "video.mp4"
    sound = (f.run or {}).get("sound")
    sound = sound if isinstance(sound, dict) else None
    muted = " muted"  # a page's own small encoding has no sound
    if mp4.is_file() and (mp4.stat().st_size <= MAX_EMBEDDED_VIDEO_BYTES or not f.frame_files):
        uri, note = _b64(mp4.read_bytes(), "video/mp4"), "video.mp4"
        if sound and sound.get("sound_span_s", []) is not None:  # None: the file had no sound in the span
            muted = ""  # it plays with the input's sound
            note += (f" with the sound of {Path(str(sound.get('source', '?'))).name} from "
                     f"{float(sound.get('from_s') or 0):.3f} s to {float(sound.get('to_s') or 0):.3f} s")
    elif f.frame_files:
        why = "video.mp4 is large" if mp4.is_file() else "no video.mp4"
        frames = [_resize_width(fr, FALLBACK_VIDEO_WIDTH) for fr in f.frames()]
        uri, note = _video_uri_from_frames(frames, f.out_fps, crf=26), f"frames/ ({why}: encoded small for this page)"
    else:
        return None
    first = f.frame(min(f.frame_files)) if f.frame_files else None
    cap = f' style="max-width:{max(2 * first.shape[1], 640)}px"' if first is not None else ""  # tiny videos
    body = (f'<video id="output-video" class="main" controls loop{muted} playsinline preload="auto"{cap} src="{uri}">'
            "</video>"
            f'<p class="note">{_esc(note)}, {f.num_frames} frames at {float(f.out_fps):.3f} fps. '
            "Inputs are marked on the timeline below; click one to jump there.</p>")
    return _section("video", "Video", body)


def _layout(centres: Sequence[float], width: float, gap: float = 0.8) -> list[float]:
    """Left edges (percent of the track) of boxes of ``width`` percent, as close to their
    ``centres`` as they can be without overlapping or leaving the track (centres sorted)."""
    lefts = [min(max(c - width / 2, 0.0), 100.0 - width) for c in centres]
    for i in range(1, len(lefts)):
        lefts[i] = max(lefts[i], lefts[i - 1] + width + gap)
    for i in range(len(lefts) - 1, -1, -1):
        limit = 100.0 - width if i == len(lefts) - 1 else lefts[i + 1] - width - gap
        lefts[i] = min(lefts[i], limit)
    return lefts


def _timeline_section(f: RunFolder) -> str | None:
    if not f.input_indices or not f.num_frames:
        return None
    dur = f.duration
    n = len(f.input_indices)
    rows = 2 if n > 5 else 1
    per_row = -(-n // rows)
    width = min(20.0, (100.0 - 0.8 * (per_row - 1)) / per_row)
    times = [idx / float(f.scene_fps) for idx in f.input_indices]
    centres = [100.0 * min(max(t / dur if dur else 0.0, 0.0), 1.0) for t in times]
    lefts = [0.0] * n
    for r in range(rows):
        mine = list(range(r, n, rows))
        for i, left in zip(mine, _layout([centres[i] for i in mine], width)):
            lefts[i] = left
    images = [f.frame(f.output_frame_at(t)) for t in times]
    known = [im for im in images if im is not None]
    hw = known[0].shape[0] / known[0].shape[1] if known else 9 / 16  # thumbnail height / width
    items, marks, lines = [], [], []
    for j, (idx, t, c, left, img) in enumerate(zip(f.input_indices, times, centres, lefts, images)):
        label = f"input frame {idx} · t = {t:.3f} s"
        pic = (f'<img alt="{_esc(label)}" src="{_jpeg_uri(img, THUMB_WIDTH)}">' if img is not None
               else f'<div class="missing" style="padding-bottom:{100 * hw:.3f}%"></div>')
        row = j % rows
        # vertical offsets in % of the strip's width (margin %), so the strip keeps the thumbnails' aspect
        items.append(f'<a class="thumb" title="{_esc(label)}" style="left:{left:.3f}%;width:{width:.3f}%;'
                     f'top:{row * 2:.1f}em;margin-top:{row * width * hw:.3f}%" href="#video" '
                     f'onclick="return seekTo({t:.6f})">{pic}<span>{_esc(label)}</span></a>')
        marks.append(f'<div class="mark" style="left:{c:.3f}%" title="{_esc(label)}"></div>')
        lines.append(f'<line x1="{left + width / 2:.3f}" y1="0" x2="{c:.3f}" y2="100"/>')
    frame_ticks = "".join(f'<div class="tick" style="left:{100.0 * k / f.num_frames:.3f}%"></div>'
                          for k in range(f.num_frames)) if f.num_frames <= 600 else ""
    link = ('<svg class="links" viewBox="0 0 100 100" preserveAspectRatio="none">'
            + "".join(lines) + "</svg>")
    body = (f'<div class="timeline" data-duration="{dur:.6f}"><div class="thumbs" style="height:{rows * 1.5:.1f}em;'
            f'padding-bottom:{rows * width * hw:.3f}%">{"".join(items)}</div>'
            f'{link}<div class="track">{frame_ticks}{"".join(marks)}<div id="playhead" class="playhead"></div></div>'
            f'<div class="axis"><span>0 s</span><span>{dur:.3f} s</span></div></div>'
            f'<p class="note">{n} input frames (red marks) over {f.num_frames} output frames (grey ticks, '
            f"{dur:.3f} s); each thumbnail is the output frame at that input's time (with the default "
            "--keep-inputs, the input itself). Click a thumbnail to show that time in the video.</p>")
    return _section("timeline", "Input frames on the timeline", body)


def _paired_gt(f: RunFolder, gt: Mapping[int, np.ndarray]) -> list[tuple[int, int]]:
    """(output frame, source index) pairs that have ground truth."""
    pairs = []
    for k in sorted(f.frame_files):
        s = f.source_index(k)
        if s is not None and s in gt:
            pairs.append((k, s))
    return pairs


def _label(img: np.ndarray, text: str) -> np.ndarray:
    img = np.ascontiguousarray(img.copy())
    scale = max(img.shape[1] / 640.0, 0.35)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(img, (0, 0), (tw + 8, th + base + 6), (0, 0, 0), -1)
    cv2.putText(img, text, (4, th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def interrupted_text(run: dict | None) -> str | None:
    """For a run.json of an interrupted run: "interrupted in STAGE: the same command with --resume finishes it"
    (the report's header and the viewer's note); None for any other."""
    if not isinstance(run, dict) or run.get("status") != "interrupted":
        return None
    return ("interrupted" + (f" in {run['stage']}" if run.get("stage") else "")
            + ": the same command with --resume finishes it")


def _pairs_rate(f: RunFolder, pairs: list[tuple[int, int]]) -> Fraction:
    """The rate at which the compared output frames ``pairs`` (output frame, source frame) follow each other in
    the video's time: the output's fps when every output frame falls on a source frame; at 60 fps from a 30 fps
    clip every other one does, so the comparison plays at 30 (it played twice too fast)."""
    if len(pairs) < 2:
        return f.out_fps
    span = Fraction(pairs[-1][0] - pairs[0][0]) / f.out_fps
    return (Fraction(len(pairs) - 1) / span).limit_denominator(1001) if span > 0 else f.out_fps


def _compare_section(f: RunFolder, gt: Mapping[int, np.ndarray] | None) -> str | None:
    if not gt:
        return None
    from sparsevid.eval.metrics import match_size

    pairs = _paired_gt(f, gt)
    if not pairs:
        return None
    keys = set(f.input_indices)
    tiles = []
    for k, s in pairs:
        g = gt[s]
        o = match_size(f.frame(k), g.shape)
        err = np.clip(np.abs(o.astype(np.int16) - g.astype(np.int16)).max(-1) * ERROR_GAIN, 0, 255).astype(np.uint8)
        err = cv2.applyColorMap(err, cv2.COLORMAP_INFERNO)[..., ::-1]
        tag = " (input)" if s in keys else ""
        panels = [_label(_fit_width(g, PANEL_WIDTH), f"ground truth {s}"),
                  _label(_fit_width(o, PANEL_WIDTH), f"output {k}{tag}"),
                  _label(_fit_width(err, PANEL_WIDTH), f"|error| x{ERROR_GAIN}")]
        h = min(p.shape[0] for p in panels)
        tiles.append(np.concatenate([p[:h] for p in panels], 1))
    uri = _video_uri_from_frames(tiles, _pairs_rate(f, pairs))
    body = (f'<video id="compare-video" class="compare" controls loop muted playsinline preload="auto" src="{uri}"></video>'
            f'<p class="note">{len(pairs)} output frames that fall on a ground-truth frame; the error panel is the '
            f"largest channel difference times {ERROR_GAIN} (black = exact).</p>")
    return _section("compare", "Ground truth | output | error", body)


def _peer_metrics(gt: Mapping[int, np.ndarray], peers: Mapping[str, Sequence[np.ndarray]],
                  indices: Sequence[int]) -> dict[str, dict[int, dict[str, float]]]:
    from sparsevid.eval.metrics import match_size, psnr, sharpness_ratio, ssim

    out: dict[str, dict[int, dict[str, float]]] = {}
    for name, frames in peers.items():
        per = {}
        for i in indices:
            if i < len(frames) and frames[i] is not None and i in gt:
                p = match_size(frames[i], gt[i].shape)
                per[i] = {"psnr": psnr(p, gt[i]), "ssim": ssim(p, gt[i]), "sharpness": sharpness_ratio(p, gt[i])}
        if per:
            out[name] = per
    return out


def _flow_peer(f: RunFolder, gt: Mapping[int, np.ndarray]) -> dict[str, list[np.ndarray]]:
    from sparsevid.eval.peers import dis_flow

    keys = {i: gt[i] for i in f.input_indices if i in gt}
    if len(keys) < 2:
        return {}
    n = max(max(gt) + 1, max(keys) + 1)
    return {"dis_flow": dis_flow(keys, n)}


def _scored_against(f: RunFolder, gt: Mapping[int, np.ndarray]) -> dict | None:
    """The run's output frames scored against ``gt`` (:func:`~sparsevid.eval.metrics.evaluate`, paired by source
    frame), so that the page scores sparsevid against the same frames as its peers; None without frames/ or
    without a frame in common (the page then shows ``metrics.json``)."""
    from sparsevid.eval.metrics import evaluate

    numbers = sorted(f.frame_files)
    source = [f.source_index(k) for k in numbers]
    if not numbers or not any(s in gt for s in source if s is not None):
        return None
    return evaluate(f.frames(), gt, f.input_indices, source_index=source)


def _metrics_section(f: RunFolder, gt: Mapping[int, np.ndarray] | None,
                     peer_frames: Mapping[str, Sequence[np.ndarray]] | None) -> str | None:
    scored = _scored_against(f, gt) if gt else None
    if scored is not None:  # this page's ground truth, not whichever metrics.json was scored against
        f = replace(f, metrics={**(f.metrics or {}), **scored})
    per_frame = (f.metrics or {}).get("per_frame")
    if not isinstance(per_frame, dict) or not per_frame:
        return None
    ours = {int(i): v for i, v in per_frame.items()}
    idx = sorted(ours)
    keys = set(f.input_indices) | {i for i, v in ours.items() if v.get("is_input")}
    peers: dict[str, dict[int, dict[str, float]]] = {}
    peer_note = ""
    if gt:
        peer_src = dict(peer_frames) if peer_frames else _flow_peer(f, gt)
        peers = _peer_metrics(gt, peer_src, idx)
    elif peer_frames:
        peer_note = " The peers cannot be scored without the ground-truth frames."
    else:
        peer_note = " Pass the ground truth (sparsevid report OUT --gt CASE) to add the flow peer."

    names = {"sparsevid": ours, **peers}
    fig, axes = _figure(9.0, 6.6, rows=3)
    for ax, (key, title) in zip(axes, (("psnr", "PSNR (dB)"), ("ssim", "SSIM"), ("sharpness", "sharpness (1 = as sharp as GT)"))):
        for j, (name, per) in enumerate(names.items()):
            xs = [i for i in idx if i in per and i not in keys and per[i].get(key) is not None]
            ys = [per[i][key] for i in xs]
            if not xs:
                continue
            color = _COLORS.get(name, _PEER_COLORS[j % len(_PEER_COLORS)])
            ax.plot(xs, ys, "-o", ms=3, lw=1.5 if name == "sparsevid" else 1.2, color=color, label=name)
        for i in keys:
            ax.axvline(i, color="#999999", lw=0.8, ls="--")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:  # nothing plotted (no held-out frame scored): no legend
        axes[0].legend(loc="best", fontsize=8)
    axes[-1].set_xlabel("source frame index (dashed: input frames, not scored)")
    fig.suptitle("held-out frames against the ground truth")
    plot = f'<div class="plot" id="metrics-plot">{_svg(fig)}</div>'

    def mean(per, key):
        vals = [per[i][key] for i in idx if i in per and i not in keys and per[i].get(key) is not None]
        return float(np.mean(vals)) if vals else None

    rows = [(name, _fmt(mean(per, "psnr")), _fmt(mean(per, "ssim"), 4), _fmt(mean(per, "sharpness"), 3),
             sum(1 for i in idx if i in per and i not in keys)) for name, per in names.items()]
    table = _table(rows, ["", "held-out PSNR (dB)", "SSIM", "sharpness", "frames"], cls="grid")
    extra = []
    fl = (f.metrics or {}).get("flicker") or {}
    if fl.get("pairs"):
        extra.append(f"flicker {_fmt(fl.get('flicker'))} grey levels, change ratio {_fmt(fl.get('change_ratio'))} "
                     "(1 = as much frame-to-frame change as the real video)")
    if (f.metrics or {}).get("pulse_ratio") is not None:
        extra.append(f"pulse ratio {_fmt(f.metrics['pulse_ratio'], 3)} (sharpness between inputs over sharpness "
                     "at inputs; 1 = no pulsing)")
    note = "; ".join(extra)
    body = table + plot + f'<p class="note">{_esc(note + ("." if note else "") + peer_note)}</p>'
    return _section("metrics", "Per-frame quality against the ground truth", body)


def _quality_section(f: RunFolder) -> str | None:
    q = f.quality
    if not q:
        return None
    measured = ((f.metrics or {}).get("heldout") or {}) if f.metrics else {}
    used = q.get("routes_used")
    rows = [("route", (q.get("route") or "–") + (f"  (routes used: {', '.join(used)})" if used else "")),
            ("estimated held-out PSNR", _fmt(q.get("psnr_heldout"), 2, " dB")
             + (f"  (measured {_fmt(measured.get('psnr'), 2, ' dB')})" if measured.get("psnr") is not None else "")),
            ("estimated held-out SSIM", _fmt(q.get("ssim_heldout"), 4)
             + (f"  (measured {_fmt(measured.get('ssim'), 4)})" if measured.get("ssim") is not None else "")),
            ("leave-one-out PSNR / SSIM", f"{_fmt(q.get('loo_psnr'))} dB / {_fmt(q.get('loo_ssim'), 4)}"),
            ("leave-one-out sharpness", _fmt(q.get("loo_sharpness"), 3)),
            ("detail power", _fmt(q.get("detail_power"), 1)),
            ("3D gain", _fmt(q.get("gain_3d"), 3)),
            ("routes left out by leave-one-out", ", ".join(q.get("routes_off") or []) or "none")]
    body = _table(rows)
    routes = q.get("routes")
    if isinstance(routes, dict) and routes:
        names = sorted({r for v in routes.values() if isinstance(v, dict) for r in v})
        rrows = [[f"input {i}"] + [_fmt((routes[i] or {}).get(r), 2) for r in names]
                 for i in sorted(routes, key=lambda s: int(s) if str(s).isdigit() else 0)]
        body += ("<h3>Leave-one-out PSNR (dB) per held-out input and route</h3>"
                 + _table(rrows, ["held out"] + names, cls="grid"))
    body += ('<p class="note">Each inner input is left out in turn and rebuilt from the others; the estimate '
             "needs no ground truth.</p>")
    return _section("quality", "Quality estimate", body)


def _run_section(f: RunFolder) -> str | None:
    """How the run was made (route, fixer and its progressive rounds, seed, steps) and what it warned about;
    a failed run's error first."""
    run = f.run or {}
    if not run:
        return None
    cfg = run.get("config") or {}
    body = ""
    if run.get("status") == "failed":
        body += f'<p class="fail">The run stopped: {_esc(run.get("error") or "(no error recorded)")}</p>'
    fixer = run.get("fixer")
    rows = [("fusion mode", "none: every output frame is an input" if run.get("inputs_only") else
             (cfg.get("fuse") or {}).get("mode") or "–"),
            ("seed", _fmt(cfg.get("seed"))),
            ("training steps", _fmt(run["training_steps"] if run.get("training_steps") is not None
                                    else (cfg.get("train") or {}).get("steps"))),
            ("output scale", _fmt(cfg.get("scale"), 3))]
    if isinstance(fixer, dict):
        rounds = fixer.get("progressive_rounds")
        prog = "off" if not fixer.get("progressive") else (
            "on: " + "; ".join(f"round {r.get('round')} at step {r.get('step')}, {r.get('views')} views, "
                               f"confidence {_fmt(r.get('mean_confidence'), 2)}" for r in rounds or [])
            if rounds else "on (no round ran)")
        rows += [("fixer", fixer.get("name") or "–"), ("post-render enhancement", _fmt(bool(fixer.get("enhance")))),
                 ("progressive updates", prog)]
    else:
        rows.append(("fixer", "not used (no 3D route)"))
    body += _table(rows)
    warnings = [w for w in run.get("warnings") or [] if isinstance(w, str)]
    if warnings:
        body += ("<h3>Warnings</h3><ul class=\"warnings\">" + "".join(f"<li>{_esc(w)}</li>" for w in warnings)
                 + "</ul>")
    return _section("run", "How it was made", body)


def _pose_section(f: RunFolder) -> str | None:
    rep = f.pose_report
    run = f.run or {}
    if rep is None:
        if run.get("inputs_only"):
            return _section("poses", "Camera poses", "<p>No poses were needed: every output frame is an input "
                                                     "frame, written as it is.</p>")
        if run.get("status") in ("interrupted", "failed") and run.get("stage") in ("loading", "poses"):
            return _section("poses", "Camera poses", f"<p>No poses: the run stopped in its {_esc(run['stage'])} "
                                                     "stage, before any were saved.</p>")
        mode = ((run.get("config") or {}).get("fuse") or {}).get("mode")
        if mode == "2d" and f.cameras is None:
            return _section("poses", "Camera poses", "<p>No poses were needed: the video was made by the 2D route "
                                                     "(optical flow between the inputs, --fuse-mode 2d).</p>")
        if f.cameras is not None or run:
            given = ((run.get("config") or {}).get("poses_from")) or "the input"
            return _section("poses", "Camera poses",
                            f'<p>Poses were not estimated: they came from {_esc(given)}.</p>')
        return None
    if rep.get("failed"):
        return _section("poses", "Camera poses",
                        f'<p class="fail">The pose stage failed: {_esc(rep["failed"])}</p>'
                        '<p class="note">The video was made by the 2D route (optical flow) alone.</p>')
    focal = rep.get("focal") or {}
    cam = rep.get("camera") or {}
    n_in = len(f.input_indices) or None
    search = focal.get("search") or {}
    rows = [("cameras registered", f"{rep.get('registered', '–')}" + (f" of {n_in}" if n_in else "")),
            ("points", _fmt(rep.get("points"))),
            ("mean reprojection error", _fmt(rep.get("mean_reproj_error_px"), 2, " px")),
            ("focal length", _fmt(focal.get("final"), 1, " px")),
            ("focal source", focal.get("source") or "–"),
            ("attempt kept", rep.get("attempt") or "–")]
    if cam:
        rows.append(("camera model", f"{cam.get('model', '?')} {cam.get('width', '?')}x{cam.get('height', '?')}"))
    if search.get("note"):
        rows.append(("focal search", search["note"]))
    if rep.get("seconds") is not None:
        rows.append(("time", _fmt(rep.get("seconds"), 1, " s")))
    body = _table(rows)
    attempts = rep.get("attempts")
    if isinstance(attempts, list) and attempts:
        arows = [(a.get("name", "?"), _fmt(a.get("registered")), _fmt(a.get("points")),
                  _fmt(a.get("mean_reproj_error_px"), 2), "yes" if a.get("valid") else "no",
                  "; ".join(map(str, a.get("problems") or [])) or "–") for a in attempts if isinstance(a, dict)]
        body += "<h3>Attempts</h3>" + _table(arows, ["attempt", "cameras", "points", "error (px)", "valid",
                                                      "problems"], cls="grid")
    return _section("poses", "Camera poses", body)


def _timing_section(f: RunFolder) -> str | None:
    stages = (f.run or {}).get("stage_seconds")
    if not isinstance(stages, dict) or not stages:
        return None
    parts = {k: float(v) for k, v in stages.items() if k != "total" and isinstance(v, (int, float))}
    total = stages.get("total")
    rows = [(k, f"{v:.2f} s") for k, v in parts.items()]
    if total is not None:
        rows.append(("total", f"{float(total):.2f} s"))
    body = _table(rows, ["stage", "wall time"], cls="grid")
    chart = ""
    if parts:
        fig, (ax,) = _figure(5.5, 0.3 * len(parts) + 0.8)
        names = list(parts)[::-1]
        ax.barh(names, [parts[k] for k in names], color="#4c72b0")
        for y, k in enumerate(names):
            ax.text(parts[k], y, f" {parts[k]:.1f} s", va="center", fontsize=8)
        ax.set_xlabel("seconds")
        ax.set_xlim(0, max(parts.values()) * 1.18 or 1)
        ax.grid(axis="x", alpha=0.3)
        chart = f'<div class="plot small" id="timing-plot">{_svg(fig)}</div>'
    body = f'<div class="side">{body}{chart}</div>'
    peak = (f.run or {}).get("peak_memory") or {}
    mem = ", ".join(f"{k.replace('_mb', '')} {float(v):.0f} MB" for k, v in peak.items() if isinstance(v, (int, float)))
    segs = (f.run or {}).get("segments") or []
    note = (f"peak memory: {mem}. " if mem else "") + (f"{len(segs)} segments (resumed run)." if len(segs) > 1 else "")
    if note:
        body += f'<p class="note">{_esc(note)}</p>'
    return _section("timings", "Stage timings", body)


_FILES = [("video.mp4", "the video (H.264)"), ("frames", "every output frame as PNG"),
          ("cameras.json", "the camera of every output frame (nerfstudio convention)"),
          ("camera_path.json", "the camera path for ns-render camera-path"),
          ("train/point_cloud.ply", "the 3D Gaussians (3DGS PLY)"),
          ("train/point_cloud.splat", "the 3D Gaussians (.splat)"),
          ("poses/transforms.json", "the estimated poses (nerfstudio)"),
          ("poses/sparse/0", "the estimated poses (COLMAP model)"),
          ("metrics.json", "scores against the ground truth"), ("quality.json", "the quality estimate"),
          ("run.json", "settings, versions, timings")]


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB" if n >= 1e3 else f"{n} B"


def _files_section(f: RunFolder) -> str | None:
    rows = []
    for rel, what in _FILES:
        p = f.out / rel
        if p.exists():
            size = sum(q.stat().st_size for q in p.rglob("*") if q.is_file()) if p.is_dir() else p.stat().st_size
            rows.append(f'<tr><td><a href="{_esc(rel)}">{_esc(rel)}</a></td><td>{_esc(what)}</td>'
                        f"<td>{_size(size)}</td></tr>")
    if not rows:
        return None
    return _section("files", "Files",
                    '<table class="grid"><tr><th>file</th><th>what</th><th>size</th></tr>' + "".join(rows) + "</table>")


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f6f4;color:#222}
main{max-width:1000px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:1.5em;margin:.6em 0 .1em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:1em;margin:1em 0 .4em}.sub{color:#777;margin:0 0 .8em}
section{background:#fff;border:1px solid #e3e3e0;border-radius:8px;padding:4px 18px 14px;margin:16px 0}
table{border-collapse:collapse;font-size:.92em}td,th{padding:3px 10px 3px 0;text-align:left;vertical-align:top}
table.grid td,table.grid th{border-bottom:1px solid #eee;padding:3px 12px 3px 4px}
table.kv th{font-weight:600;color:#555;white-space:nowrap}
video.main{width:100%;max-height:70vh;background:#000;border-radius:4px;display:block}
video.compare{width:100%;background:#000;border-radius:4px}
.note{color:#666;font-size:.88em}.fail{color:#b00020;font-weight:600}
.plot svg{width:100%;height:auto}.plot.small{max-width:620px}
.side{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}
.timeline{position:relative;margin:8px 0 4px}.timeline .thumbs{position:relative}
.thumb{position:absolute;top:0;display:block;text-decoration:none;color:#333;font-size:.75em;text-align:center}
svg.links{display:block;width:100%;height:18px;overflow:visible}
svg.links line{stroke:#d62728;stroke-width:1;vector-effect:non-scaling-stroke}.thumb img{width:100%;display:block;box-sizing:border-box;border:2px solid #d62728;border-radius:3px}
.thumb:hover img{border-color:#000}.thumb span{display:block;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.track{position:relative;height:22px;background:#eceae6;border-radius:3px}
.track .tick{position:absolute;top:6px;width:1px;height:10px;background:#b5b3ad}
.track .mark{position:absolute;top:0;width:3px;margin-left:-1px;height:22px;background:#d62728}
.track .playhead{position:absolute;top:-3px;width:2px;height:28px;background:#000;left:0}
.axis{display:flex;justify-content:space-between;color:#777;font-size:.8em}
.missing{background:#ddd}
"""

_JS = """
function seekTo(t){var v=document.getElementById('output-video');if(!v)return false;v.pause();v.currentTime=t;
if(v.scrollIntoView)v.scrollIntoView({block:'nearest'});return false;}
(function(){var v=document.getElementById('output-video'),h=document.getElementById('playhead');
if(!v||!h)return;var d=parseFloat(h.parentNode.parentNode.getAttribute('data-duration'))||0;
v.addEventListener('timeupdate',function(){var D=d||v.duration||1;h.style.left=(100*Math.min(v.currentTime/D,1))+'%';});})();
"""


def build_report(out_dir: Path, peer_frames: Mapping[str, Sequence[np.ndarray]] | None = None,
                 gt_frames: Mapping[int, np.ndarray] | None = None) -> str:
    """The report page of ``out_dir`` as an HTML string (see the module docstring)."""
    f = RunFolder.read(Path(out_dir))
    sections: list[tuple[str, Callable[[], str | None]]] = [
        ("video", lambda: _video_section(f)),
        ("timeline", lambda: _timeline_section(f)),
        ("ground-truth video", lambda: _compare_section(f, gt_frames)),
        ("per-frame metrics", lambda: _metrics_section(f, gt_frames, peer_frames)),
        ("quality estimate", lambda: _quality_section(f)),
        ("settings and warnings", lambda: _run_section(f)),
        ("poses", lambda: _pose_section(f)),
        ("timings", lambda: _timing_section(f)),
        ("files", lambda: _files_section(f)),
    ]
    parts = [_header(f)]
    for name, make in sections:
        try:
            part = make()
        except Exception as e:  # a report section never fails the run
            log.warn(f"report: the {name} section is left out ({type(e).__name__}: {e})")
            continue
        if part:
            parts.append(part)
    body = "".join(parts)
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>sparsevid report: {_esc(f.out.name)}</title><style>{_CSS}</style></head>"
            f"<body><main>{body}</main><script>{_JS}</script></body></html>\n")


def write_report(out_dir: Path, peer_frames: dict[str, list[np.ndarray]] | None = None,
                 gt_frames: dict[int, np.ndarray] | None = None) -> Path:
    """Write ``out_dir/report.html`` (atomically): a self-contained page of a finished run.

    Args:
        out_dir: a run folder (``sparsevid run -o OUT``), finished or not: what is missing is left out.
        peer_frames: {name: frames by source frame index} of baselines to plot against, scored with
            ``gt_frames``; None: the DIS optical-flow peer made from the ground truth at the input indices.
        gt_frames: {source frame index: [H, W, 3] uint8} ground-truth frames (inputs included), for
            the GT | output | error video and the peers' scores; None: those parts are left out.

    Returns:
        The path of the report.
    """
    out_dir = Path(out_dir)
    return atomic_write_text(out_dir / REPORT_NAME, build_report(out_dir, peer_frames, gt_frames))
