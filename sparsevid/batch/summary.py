"""``OUTROOT/summary.csv``, ``summary.json`` and ``summary.html``: one row per clip, written
atomically (rewritten as clips finish, so a reader never sees half a file).

Columns: ``clip, status, error, warnings, input, output, frames, device, resumed, host, wall_s, report``
(``warnings``: the warning lines the clip's run printed, joined by `` | `` in the CSV, a list in the JSON),
then ``seconds_<stage>`` (wall time per pipeline stage of the clip's run, all resumed segments
summed; ``seconds_total`` is the run's whole time), ``quality_<key>`` (the leave-one-out quality
estimate, e.g. ``quality_psnr_heldout``) and ``metrics_<group>_<key>`` (against ground truth when
the clip holds it, e.g. ``metrics_heldout_psnr``); spaces in a key become ``_`` (``seconds_rigid_check``).
``summary.json`` keeps the nested form. ``status``: ``done``, ``skipped`` (finished before), ``kept`` (finished
before with other settings or input, left as it is without ``--overwrite``: its row shows that run's numbers and the
difference), ``failed``, ``pending`` (not run yet) or ``interrupted`` (stopped half-way by Ctrl-C: rerun the batch to
resume it).
"""
from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sparsevid.io_utils import atomic_write_text, write_json
from sparsevid.outdir import BUSY

BASE_COLUMNS = ["clip", "status", "error", "warnings", "input", "output", "frames", "device", "resumed", "host",
                "wall_s", "report"]
_STAGE_ORDER = ["loading", "poses", "training", "fixing", "rendering", "enhance", "fusing", "encoding", "eval",
                "total"]
_NESTED = ("seconds", "quality", "metrics")


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its nested groups flattened into ``<group>_<key>`` columns."""
    flat = {k: v for k, v in row.items() if k not in _NESTED}
    if isinstance(flat.get("warnings"), list):
        flat["warnings"] = " | ".join(flat["warnings"])
    for group in _NESTED:
        for k, v in (row.get(group) or {}).items():
            flat[f"{group}_{k}".replace(" ", "_")] = v  # "rigid check" -> seconds_rigid_check
    return flat


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """The CSV columns of ``rows``: the base ones, then the stage times in pipeline order, then
    the quality and metrics columns (sorted)."""
    seen: list[str] = []
    for r in rows:
        for k in flat_row(r):
            if k not in BASE_COLUMNS and k not in seen:
                seen.append(k)
    stages = [f"seconds_{s}" for s in _STAGE_ORDER if f"seconds_{s}" in seen]
    stages += sorted(k for k in seen if k.startswith("seconds_") and k not in stages)
    rest = sorted(k for k in seen if not k.startswith("seconds_"))
    return BASE_COLUMNS + stages + rest


def merged_rows(outroot: str | Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (this batch's clips) with the rows ``OUTROOT/summary.json`` holds for other clips whose folder is
    still there (or that failed), after them: a batch run on some of the clips of an OUTROOT keeps the others in its
    summary, and
    two batches writing one OUTROOT at once keep each other's clips. A clip this batch found being written by
    another process keeps that process's row when the file has one beyond ``pending``."""
    try:
        earlier = json.loads((Path(outroot) / "summary.json").read_text()).get("clips") or []
        earlier = {r["clip"]: r for r in earlier if isinstance(r, dict) and r.get("clip")}
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return rows
    mine = {r["clip"] for r in rows}
    out = []
    for r in rows:
        other = earlier.get(r["clip"])
        out.append(other if elsewhere(r) and other is not None and other.get("status") not in ("pending", None) else r)
    # a clip whose input failed to load has no folder (nothing is written before the input is read): its row stays
    out += [r for name, r in earlier.items() if name not in mine and r.get("output")
            and (Path(r["output"]).is_dir() or r.get("status") == "failed")]
    return out


def write_summary(outroot: str | Path, rows: list[dict[str, Any]]) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.json`` and ``summary.html`` into ``outroot``: ``rows`` and the rows the
    summary already holds for other clips (:func:`merged_rows`)."""
    root = Path(outroot)
    rows = merged_rows(root, rows)
    cols = columns(rows)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in flat_row(r).items()})
    paths = {"csv": atomic_write_text(root / "summary.csv", buf.getvalue()),
             "json": write_json(root / "summary.json", {"clips": rows, "counts": counts(rows)}),
             "html": atomic_write_text(root / "summary.html", summary_html(rows))}
    return paths


def elsewhere(row: dict[str, Any]) -> bool:
    """Whether ``row`` is a clip this batch found another sparsevid process writing (a second batch on the same
    OUTROOT): not a failure of the clip; that process's row stands (:func:`merged_rows`)."""
    return row.get("status") == "failed" and BUSY in (row.get("error") or "")


def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many rows have each status; a clip another process is running counts as ``elsewhere``, not failed."""
    c: dict[str, int] = {}
    for r in rows:
        status = "elsewhere" if elsewhere(r) else r["status"]
        c[status] = c.get(status, 0) + 1
    return c


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def summary_html(rows: list[dict[str, Any]]) -> str:
    """A self-contained page: one table row per clip, linking its ``report.html``."""
    e = html.escape
    body = []
    for r in rows:
        name = e(r["clip"])
        link = f'<a href="{e(quote(r["report"]))}">{name}</a>' if r.get("report") else name
        q, m, s = r.get("quality") or {}, r.get("metrics") or {}, r.get("seconds") or {}
        body.append(
            f'<tr class="{e(r["status"])}"><td>{link}</td><td>{e(r["status"])}</td><td>{e(_fmt(r.get("frames")))}</td>'
            f'<td>{e(_fmt(s.get("total"), 1))}</td><td>{e(_fmt(q.get("psnr_heldout")))}</td>'
            f'<td>{e(_fmt(m.get("heldout_psnr")))}</td><td>{e(_fmt(r.get("device")))}</td>'
            f'<td>{e(r.get("error") or "")}</td><td>{"<br>".join(e(w) for w in r.get("warnings") or [])}</td></tr>')
    c = counts(rows)
    head = ", ".join(f"{n} {k}" for k, n in sorted(c.items()))
    warned = sum(1 for r in rows if r.get("warnings"))
    head += f"; {warned} with warnings" if warned else ""
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>sparsevid batch</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
            "tr.failed td{background:#fdd}tr.kept td{background:#ffd}tr.skipped td{color:#555}</style></head><body>"
            f"<h1>sparsevid batch</h1><p>{len(rows)} clips: {e(head)}</p><table><tr><th>clip</th><th>status</th>"
            "<th>frames</th><th>time (s)</th><th>est. held-out PSNR (dB)</th><th>held-out PSNR vs ground truth (dB)"
            "</th><th>device</th><th>error</th><th>warnings</th></tr>" + "".join(body) + "</table></body></html>\n")
