"""Reports from an :class:`~.analysis.Analysis`: Markdown and CSV tables laid out like the
JVET results sheets, RD-curve plots (PNG) and one self-contained HTML page.

Files written into the output folder (each to a temporary name, then renamed):

``summary.md``              per-class/overall and per-sequence tables, failures
``bdrate_sequences.csv``    one row per (test codec, sequence, method): BD-rate and
                            BD-PSNR Y/U/V/YUV, EncT, DecT
``bdrate_classes.csv``      one row per (test codec, class or Overall, method)
``rd/<label>.csv``          RD points of one codec, in the format ``codeclab bdrate`` reads
``plots/<sequence>.png``    every codec's RD curve of one sequence
``report.html``             all of the above, plots embedded as base64
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import re
from pathlib import Path
from typing import Any

from codeclab.base.atomic import atomic_write
from codeclab.base.errors import UsageError
from codeclab.eval.analysis import COMPONENTS, METHODS, Analysis, RDPoint, point_value

__all__ = ["write_report", "write_rd_csv", "RD_COLUMNS", "safe_name"]

RD_COLUMNS = ("sequence", "class", "point", "rate", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "ms_ssim_y",
              "encode_s", "decode_s", "bytes", "frames")


def safe_name(s: str) -> str:
    """A file-name-safe version of a label or sequence name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_") or "x"


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    def write(f: Any) -> None:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow([_cell(v) for v in r])

    atomic_write(path, write)


def write_rd_csv(path: Path, points: list[RDPoint]) -> None:
    """RD points of one codec (all sequences) in the ``codeclab bdrate`` CSV format."""
    rows = [[p.sequence, p.cls, p.point, p.rate, p.psnr_y, p.psnr_u, p.psnr_v, p.psnr_yuv, p.ms_ssim_y,
             p.encode_s, p.decode_s, p.bytes, p.n_frames] for p in points]
    _write_csv(path, list(RD_COLUMNS), rows)


# ---- tables -------------------------------------------------------------------------
def _pct(v: float | None) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.2f}%"


def _ratio(v: float) -> str:
    return "—" if not math.isfinite(v) else f"{100 * v:.0f}%"


def _db(v: float | None) -> str:
    return "—" if v is None else f"{v:.4f}"


def _md_table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """Pipe table; the first ``left`` columns (names) left-aligned, numbers right-aligned."""
    align = ["---" if i < left or h in ("Note", "Error") else "---:" for i, h in enumerate(header)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _class_rows(an: Analysis, test: str, method: str) -> list[list[str]]:
    rows = []
    for c in an.per_class:
        if c.test != test:
            continue
        name = c.name if c.name != "Overall" or not an.overall_exclude else f"Overall (without {', '.join(an.overall_exclude)})"
        rows.append([name, str(c.n)] + [_pct(c.bd_rate[method][k]) for k in COMPONENTS]
                    + [_ratio(c.enc_ratio), _ratio(c.dec_ratio)])
    return rows


def _seq_rows(an: Analysis, test: str, method: str) -> list[list[str]]:
    rows = []
    for r in an.per_sequence:
        if r.test != test:
            continue
        bd = r.bd_rate.get(method, {})
        rows.append([r.cls, r.sequence] + [_pct(bd.get(k)) for k in COMPONENTS]
                    + [f"{bd_p:+.3f}" if (bd_p := r.bd_psnr.get(method, {}).get("Y")) is not None else "—"]
                    + [_ratio(r.enc_ratio), _ratio(r.dec_ratio), r.error or ""])
    return rows


_CLASS_HDR = ["Class", "Seqs", "Y", "U", "V", "YUV", "EncT", "DecT"]
_SEQ_HDR = ["Class", "Sequence", "Y", "U", "V", "YUV", "BD-PSNR Y (dB)", "EncT", "DecT", "Note"]


def _markdown(an: Analysis, title: str, method: str, missing: list[str]) -> str:
    out = [f"# {title}", "",
           f"Anchor: **{an.anchor}**. BD-rate in percent (negative = the test codec needs fewer bits for the same PSNR), "
           f"{method} interpolation (`bdrate_*.csv` carry both methods and BD-PSNR for every component). "
           "EncT/DecT: test time / anchor time summed over the rate points; class and overall rows take the "
           "arithmetic mean of BD-rates and the geometric mean of time ratios, as the JVET sheets do.", ""]
    for test in an.labels[1:]:
        seq_rows = [[c.replace("|", "\\|") for c in r] for r in _seq_rows(an, test, method)]
        out += [f"## {test} vs {an.anchor}", "", _md_table(_CLASS_HDR, _class_rows(an, test, method)), "",
                _md_table(_SEQ_HDR, seq_rows, left=2), ""]
    if an.failures:
        out += ["## Failed jobs", "", _md_table(["Sequence", "Codec", "Point", "Error"], left=2, rows=[
            [f["sequence"], f["label"], _cell(point_value(f["point"])), (f["error"] or "").replace("|", "\\|")]
            for f in an.failures
        ]), ""]
    if missing:
        out += ["## Missing sequences", ""] + [f"- {m}" for m in missing] + [""]
    return "\n".join(out)


# ---- plots --------------------------------------------------------------------------
def _plot_png(an: Analysis, seq: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    markers = "os^Dvx*+<>"
    for i, lab in enumerate(an.labels):
        pts = an.points.get((seq, lab), [])
        if pts:
            ax.plot([p.rate for p in pts], [p.psnr_y for p in pts], marker=markers[i % len(markers)],
                    label=lab + (" (anchor)" if lab == an.anchor else ""))
    ax.set_xlabel("rate (kbit/s)")
    ax.set_ylabel("PSNR Y (dB)")
    ax.set_title(seq)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})  # no timestamp/version: reproducible bytes
    return buf.getvalue()


# ---- HTML ---------------------------------------------------------------------------
_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:72em}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:0.2em 0.6em}
td{text-align:right}td:first-child,td:nth-child(2){text-align:left}th{background:#eee}
.plots{display:flex;flex-wrap:wrap;gap:1em}.plots img{width:30em}"""


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{b}</table>"


def _html(an: Analysis, title: str, method: str, plots: dict[str, bytes], missing: list[str]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p>Anchor: <b>{html.escape(an.anchor)}</b>. BD-rate in percent ({method} interpolation); "
             "negative means the test codec saves bits. EncT/DecT: time ratios test/anchor "
             "(geometric mean over sequences in class rows).</p>"]
    for test in an.labels[1:]:
        parts += [f"<h2>{html.escape(test)} vs {html.escape(an.anchor)}</h2>",
                  _html_table(_CLASS_HDR, _class_rows(an, test, method)),
                  _html_table(_SEQ_HDR, _seq_rows(an, test, method))]
    if an.failures:
        parts += ["<h2>Failed jobs</h2>", _html_table(["Sequence", "Codec", "Point", "Error"], [
            [f["sequence"], f["label"], _cell(point_value(f["point"])), f["error"] or ""] for f in an.failures])]
    if missing:
        parts += ["<h2>Missing sequences</h2><ul>"] + [f"<li>{html.escape(m)}</li>" for m in missing] + ["</ul>"]
    parts.append("<h2>RD curves</h2><div class='plots'>")
    for seq, png in plots.items():
        b64 = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img alt='{html.escape(seq)}' src='data:image/png;base64,{b64}'></figure>")
    parts.append("</div><h2>RD points</h2>")
    for _, seq in an.sequences:
        rows = [[p.label, _cell(p.point), f"{p.rate:.3f}", f"{p.psnr_y:.4f}", _db(p.psnr_u), _db(p.psnr_v),
                 f"{p.psnr_yuv:.4f}", f"{p.encode_s:.3f}", f"{p.decode_s:.3f}"]
                for lab in an.labels for p in reversed(an.points.get((seq, lab), []))]  # highest rate first, as QP 22..37
        if rows:
            parts += [f"<h3>{html.escape(seq)}</h3>", _html_table(
                ["Codec", "Point", "kbit/s", "PSNR Y", "PSNR U", "PSNR V", "PSNR YUV", "Enc s", "Dec s"], rows)]
    parts.append("</body></html>")
    return "\n".join(parts)


# ---- entry point --------------------------------------------------------------------
def write_report(an: Analysis, out: str | Path, *, title: str = "codeclab evaluation", method: str = "pchip",
                 missing: list[str] | None = None, plots: bool = True) -> dict[str, Path]:
    """Write every report file into ``out``; returns {kind: path}."""
    if method not in METHODS:
        raise UsageError(f"unknown BD method {method!r} (want {' or '.join(METHODS)})")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create report folder {out}: {e.strerror or e}") from None
    missing = missing or []
    written: dict[str, Path] = {}

    seq_rows = []
    for r in an.per_sequence:
        for m in METHODS:
            bd, bp = r.bd_rate.get(m, {}), r.bd_psnr.get(m, {})
            seq_rows.append([r.test, r.anchor, r.cls, r.sequence, m] + [bd.get(k) for k in COMPONENTS]
                            + [bp.get(k) for k in COMPONENTS] + [r.enc_ratio, r.dec_ratio, r.error])
    _write_csv(out / "bdrate_sequences.csv",
               ["test", "anchor", "class", "sequence", "method"] + [f"bd_rate_{k.lower()}" for k in COMPONENTS]
               + [f"bd_psnr_{k.lower()}" for k in COMPONENTS] + ["enc_ratio", "dec_ratio", "error"], seq_rows)
    written["sequences_csv"] = out / "bdrate_sequences.csv"
    cls_rows = [[c.test, an.anchor, c.name, m, c.n] + [c.bd_rate[m][k] for k in COMPONENTS] + [c.enc_ratio, c.dec_ratio]
                for c in an.per_class for m in METHODS]
    _write_csv(out / "bdrate_classes.csv", ["test", "anchor", "class", "method", "sequences"]
               + [f"bd_rate_{k.lower()}" for k in COMPONENTS] + ["enc_ratio", "dec_ratio"], cls_rows)
    written["classes_csv"] = out / "bdrate_classes.csv"
    for lab in an.labels:
        pts = [p for (_, s) in an.sequences for p in an.points.get((s, lab), [])]
        write_rd_csv(out / "rd" / f"{safe_name(lab)}.csv", pts)
        written[f"rd:{lab}"] = out / "rd" / f"{safe_name(lab)}.csv"

    md = _markdown(an, title, method, missing)
    atomic_write(out / "summary.md", lambda f: f.write(md))
    written["markdown"] = out / "summary.md"

    pngs: dict[str, bytes] = {}
    if plots:
        for _, seq in an.sequences:
            if any((seq, lab) in an.points for lab in an.labels):
                png = _plot_png(an, seq)
                pngs[seq] = png
                p = out / "plots" / f"{safe_name(seq)}.png"
                atomic_write(p, lambda f, png=png: f.write(png), binary=True)
                written[f"plot:{seq}"] = p
    page = _html(an, title, method, pngs, missing)
    atomic_write(out / "report.html", lambda f: f.write(page))
    written["html"] = out / "report.html"
    return written
