"""RD-point CSV files, the input of ``codeclab bdrate ANCHOR.csv TEST.csv``.

Format (header row required, comma-separated, ``#`` lines ignored):

- ``rate`` — bit rate, any unit as long as both files use the same (kbit/s in our reports);
- ``psnr_y`` (or ``psnr`` for a single quality column) — required;
- ``psnr_u``, ``psnr_v`` — optional; with both, BD-rate is given for U, V and YUV too;
- ``sequence`` — optional; with it, one BD-rate per sequence (both files must list the
  same sequences), otherwise the whole file is one curve;
- any other column (``qp``, ``point``, ``class``, timings) is ignored.

The ``rd/<codec>.csv`` files written by ``codeclab eval report`` are in this format.
"""

from __future__ import annotations

import csv
from pathlib import Path

from codeclab.base.errors import InputError

__all__ = ["read_rd_csv"]


def read_rd_csv(path: str | Path) -> dict[str, dict[str, list[float]]]:
    """Curves by sequence (``""`` when there is no sequence column), as bd_rate_components takes them."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text CSV file") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    cols = [c.strip().lower() for c in (reader.fieldnames or [])]
    if "rate" not in cols or not ({"psnr_y", "psnr"} & set(cols)):
        raise InputError(f"{path}: needs a header with 'rate' and 'psnr_y' (or 'psnr') columns, got {cols or 'none'}")
    reader.fieldnames = cols
    ycol = "psnr_y" if "psnr_y" in cols else "psnr"
    chroma = "psnr_u" in cols and "psnr_v" in cols
    rows = list(reader)
    if chroma and any(not (r.get("psnr_u") or "").strip() or not (r.get("psnr_v") or "").strip() for r in rows):
        chroma = False  # empty chroma cells (4:0:0 sources): luma-only curves
    out: dict[str, dict[str, list[float]]] = {}
    for n, row in enumerate(rows, start=2):
        seq = (row.get("sequence") or "").strip()
        curve = out.setdefault(seq, {"rate": [], "psnr_y": []} | ({"psnr_u": [], "psnr_v": []} if chroma else {}))
        try:
            curve["rate"].append(float(row["rate"]))
            curve["psnr_y"].append(float(row[ycol]))
            if chroma:
                curve["psnr_u"].append(float(row["psnr_u"]))
                curve["psnr_v"].append(float(row["psnr_v"]))
        except (TypeError, ValueError):
            raise InputError(f"{path}: row {n} has a missing or non-numeric rate/PSNR value") from None
    if not out:
        raise InputError(f"{path}: no data rows")
    return out
