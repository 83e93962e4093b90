"""From stored jobs to the numbers of a JVET results sheet.

- RD points per (sequence, codec label): rate in kbit/s, PSNR Y/U/V/YUV, encode and
  decode seconds, one point per rate point (QP).
- Per sequence, for every test codec against the anchor: BD-rate Y/U/V/YUV and BD-PSNR
  Y/U/V/YUV by both interpolations (through :mod:`.bdrate`, the project's only
  implementation), and the time ratios EncT/DecT = test time / anchor time summed over
  the rate points.
- Per class and overall: arithmetic mean of the sequences' BD-rates and the *geometric*
  mean of their time ratios, as the JVET sheets average them. Sequences whose BD-rate
  cannot be computed (a failed or missing point) are listed and left out of averages.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from codeclab.base.errors import UsageError
from codeclab.eval.bdrate import bd_psnr, bd_rate_components

__all__ = ["point_value", "RDPoint", "SequenceBD", "ClassBD", "Analysis", "analyse", "rd_points", "METHODS", "COMPONENTS"]

METHODS = ("pchip", "cubic")
COMPONENTS = ("Y", "U", "V", "YUV")


@dataclass(frozen=True)
class RDPoint:
    sequence: str
    cls: str
    label: str
    point: float
    rate: float  # kbit/s
    psnr_y: float
    psnr_u: float | None
    psnr_v: float | None
    psnr_yuv: float
    ms_ssim_y: float | None
    encode_s: float
    decode_s: float
    bytes: int
    n_frames: int


@dataclass
class SequenceBD:
    sequence: str
    cls: str
    test: str
    anchor: str
    bd_rate: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> component -> %
    bd_psnr: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> component -> dB
    enc_ratio: float = math.nan
    dec_ratio: float = math.nan
    error: str | None = None  # why BD could not be computed


@dataclass
class ClassBD:
    name: str  # class name, or "Overall"
    test: str
    n: int  # sequences averaged
    bd_rate: dict[str, dict[str, float]]
    enc_ratio: float
    dec_ratio: float


@dataclass
class Analysis:
    anchor: str
    labels: list[str]  # anchor first
    points: dict[tuple[str, str], list[RDPoint]]  # (sequence, label) -> points sorted by rate
    sequences: list[tuple[str, str]]  # (class, sequence) in report order
    per_sequence: list[SequenceBD]
    per_class: list[ClassBD]
    failures: list[dict[str, Any]]  # failed job rows
    overall_exclude: tuple[str, ...] = ()


def point_value(v: float) -> float | int:
    """Rate points come back from SQLite as REAL; QPs read better as ints."""
    return int(v) if float(v).is_integer() else float(v)


def rd_points(jobs: list[dict[str, Any]]) -> dict[tuple[str, str], list[RDPoint]]:
    """Finished jobs grouped into RD curves, each sorted by rate."""
    out: dict[tuple[str, str], list[RDPoint]] = defaultdict(list)
    for j in jobs:
        if j["status"] != "done":
            continue
        out[(j["sequence"], j["label"])].append(
            RDPoint(
                j["sequence"], j["class"], j["label"], point_value(j["point"]), j["kbps"], j["psnr_y"], j["psnr_u"], j["psnr_v"],
                j["psnr_yuv"], j["ms_ssim_y"], j["encode_s"] or 0.0, j["decode_s"] or 0.0, j["bytes"] or 0,
                j["n_frames"] or 0,
            )
        )
    return {k: sorted(v, key=lambda p: p.rate) for k, v in out.items()}


def curve(points: list[RDPoint]) -> dict[str, list[float]]:
    """The mapping ``bd_rate_components`` takes (chroma only when every point has it)."""
    d: dict[str, list[float]] = {"rate": [p.rate for p in points], "psnr_y": [p.psnr_y for p in points]}
    if all(p.psnr_u is not None and p.psnr_v is not None for p in points):
        d["psnr_u"] = [p.psnr_u for p in points]  # type: ignore[misc]
        d["psnr_v"] = [p.psnr_v for p in points]  # type: ignore[misc]
    return d


def _bd_psnr_components(a: dict[str, list[float]], b: dict[str, list[float]], method: str) -> dict[str, float]:
    out = {"Y": bd_psnr(a["rate"], a["psnr_y"], b["rate"], b["psnr_y"], method=method)}  # type: ignore[arg-type]
    if "psnr_u" in a and "psnr_u" in b:
        for c in "uv":
            out[c.upper()] = bd_psnr(a["rate"], a[f"psnr_{c}"], b["rate"], b[f"psnr_{c}"], method=method)  # type: ignore[arg-type]
        ya = [(6 * y + u + v) / 8 for y, u, v in zip(a["psnr_y"], a["psnr_u"], a["psnr_v"])]
        yb = [(6 * y + u + v) / 8 for y, u, v in zip(b["psnr_y"], b["psnr_u"], b["psnr_v"])]
        out["YUV"] = bd_psnr(a["rate"], ya, b["rate"], yb, method=method)  # type: ignore[arg-type]
    else:
        out["YUV"] = out["Y"]
    return out


def _geomean(values: list[float]) -> float:
    vals = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else math.nan


def _ratio(test: list[RDPoint], anchor: list[RDPoint], attr: str) -> float:
    a = sum(getattr(p, attr) for p in anchor)
    t = sum(getattr(p, attr) for p in test)
    return t / a if a > 0 else math.nan


def analyse(jobs: list[dict[str, Any]], anchor: str, labels: list[str] | None = None,
            overall_exclude: tuple[str, ...] = ()) -> Analysis:
    """BD-rates and time ratios of every label against ``anchor`` from stored job rows.

    ``labels`` fixes the order of codecs (anchor first); by default the order found.
    Classes in ``overall_exclude`` (the CTC leaves D and F out) do not enter "Overall".
    """
    pts = rd_points(jobs)
    found = list(dict.fromkeys(j["label"] for j in jobs))
    labels = [anchor] + [lab for lab in (labels or found) if lab != anchor]
    if anchor not in found and jobs:
        raise UsageError(f"anchor {anchor!r} has no jobs in this run (labels: {', '.join(found)})")
    seqs = list(dict.fromkeys((j["class"], j["sequence"]) for j in jobs))
    failures = [j for j in jobs if j["status"] != "done"]
    npoints: dict[tuple[str, str], int] = defaultdict(int)
    for j in jobs:
        npoints[(j["sequence"], j["label"])] += 1
    per_seq: list[SequenceBD] = []
    for cls, seq in seqs:
        a = pts.get((seq, anchor), [])
        for lab in labels[1:]:
            t = pts.get((seq, lab), [])
            r = SequenceBD(seq, cls, lab, anchor)
            short = [f"{x} has {len(p)}/{npoints[(seq, x)]} points" for x, p in ((anchor, a), (lab, t))
                     if len(p) < npoints[(seq, x)] or not p]
            if short:
                r.error = "; ".join(short)
            else:
                ca, ct = curve(a), curve(t)
                try:
                    for m in METHODS:
                        r.bd_rate[m] = bd_rate_components(ca, ct, method=m)  # type: ignore[arg-type]
                        r.bd_psnr[m] = _bd_psnr_components(ca, ct, m)
                except UsageError as e:
                    r.error = str(e)
                    r.bd_rate.clear()
                    r.bd_psnr.clear()
                r.enc_ratio = _ratio(t, a, "encode_s")
                r.dec_ratio = _ratio(t, a, "decode_s")
            per_seq.append(r)
    per_class: list[ClassBD] = []
    classes = list(dict.fromkeys(c for c, _ in seqs))
    for lab in labels[1:]:
        rows = [r for r in per_seq if r.test == lab and r.error is None]
        groups = [(c, [r for r in rows if r.cls == c]) for c in classes]
        groups.append(("Overall", [r for r in rows if r.cls not in overall_exclude]))
        for name, rs in groups:
            bd: dict[str, dict[str, float]] = {}
            for m in METHODS:
                bd[m] = {}
                for comp in COMPONENTS:
                    vals = [r.bd_rate[m][comp] for r in rs if comp in r.bd_rate.get(m, {})]
                    bd[m][comp] = sum(vals) / len(vals) if vals else math.nan
            per_class.append(ClassBD(name, lab, len(rs), bd, _geomean([r.enc_ratio for r in rs]),
                                     _geomean([r.dec_ratio for r in rs])))
    return Analysis(anchor, labels, pts, seqs, per_seq, per_class, failures, overall_exclude)
