"""Per-frame objective quality (PSNR, MS-SSIM) and a per-frame metrics log.

Conventions, chosen to match the tools our numbers get compared with:

* **PSNR** uses the peak ``2**bit_depth - 1`` (1023 for 10-bit), as FFmpeg's ``psnr`` filter
  does (checked against FFmpeg in ``tests/pipeline/test_metrics.py``); HM and VTM use
  ``255 << (bit_depth - 8)`` (1020), so their 10-bit PSNR reads 0.0255 dB lower. Sums of squared
  errors are exact int64. Identical planes give :data:`PSNR_CAP_DB` (FFmpeg prints ``inf``,
  HM ``99.99``); every PSNR is clamped to that cap so that averages stay finite and PSNR stays
  monotone in the error (one changed sample in a 1080p frame would otherwise read ~111 dB,
  more than the value for an identical frame).
* **psnr_yuv** is ``(6*Y + U + V) / 8`` of the per-plane PSNRs, the JVET CTC weighting
  (also used here for 4:2:2 / 4:4:4, as JVET does); 4:0:0 gives ``psnr_yuv = psnr_y``.
* **Sequence averages** are means of per-frame values (HM/JVET report the mean of per-frame
  PSNRs, not the PSNR of the mean MSE as FFmpeg's summary line does).
* **MS-SSIM** is Wang, Simoncelli & Bovik (2003) as in Wang's reference ``msssim.m``:
  11-tap Gaussian window (sigma 1.5) applied "valid" (no padding), K1 = 0.01, K2 = 0.03,
  L = ``2**bit_depth - 1``, 5 scales with 2x2 averaging (an odd row/column is completed by
  repeating the edge sample, Matlab's ``'symmetric'``), weights
  (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), mean contrast-structure at scales 1-4 and mean
  SSIM at the last scale. Negative means (anti-correlated noise) are clipped to 0 before the
  fractional power, as pytorch-msssim does. Planes too small for 5 scales (a scale needs
  at least 11x11 samples and halving rounds up, so 5 scales need min(H, W) >= 161) use as
  many scales as fit, their weights rescaled to the total of the five (Wang's ``msssim.m``
  returns -Inf there); planes smaller than 11x11 give NaN.
  libvmaf's ``float_ms_ssim`` defines MS-SSIM differently in two details: a 9-tap 9/7
  wavelet low-pass (symmetric borders) before decimation instead of the 2x2 mean, and per
  scale ``mean(c)**b * mean(s)**b`` instead of ``mean(c*s)**b``. On x264-coded real frames
  the two agree to about 1e-3 (``tests/pipeline/test_metrics.py`` measures it and reproduces
  libvmaf's number from those two changes alone).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import correlate1d

from codeclab.base.atomic import atomic_write
from codeclab.base.errors import FormatError, InputError
from codeclab.base.frame import Frame

__all__ = [
    "PSNR_CAP_DB",
    "MS_SSIM_WEIGHTS",
    "mse_plane",
    "psnr_plane",
    "ms_ssim",
    "ms_ssim_scales",
    "frame_metrics",
    "MetricsLog",
]

#: PSNR reported for identical planes, and the ceiling of every PSNR (common practice;
#: FFmpeg prints inf, HM 99.99).
PSNR_CAP_DB = 100.0

#: Per-scale exponents of Wang et al. 2003, finest scale first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

_K1, _K2 = 0.01, 0.03
_WIN = 11
_SIGMA = 1.5


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise FormatError(f"plane shapes differ: {a.shape} vs {b.shape}")
    if a.ndim != 2:
        raise FormatError(f"expected a 2-D plane, got shape {a.shape}")


def mse_plane(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error; integer planes are summed exactly in int64, float ones in float64."""
    _check_pair(a, b)
    if a.size == 0:
        raise FormatError("empty plane")
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        df = a.astype(np.float64) - b.astype(np.float64)
        return float(np.einsum("ij,ij->", df, df)) / a.size
    # 8-bit errors squared fit int32; wider ones need int64. Sums are int64: exact for
    # 16-bit errors over 2**31 samples.
    wide = np.int32 if a.dtype.itemsize == 1 and b.dtype.itemsize == 1 else np.int64
    d = np.subtract(a, b, dtype=wide)
    sse = int(np.square(d, out=d).sum(dtype=np.int64))
    return sse / a.size


def _psnr_from_mse(mse: float, bit_depth: int) -> float:
    if mse <= 0.0:
        return PSNR_CAP_DB
    peak = float((1 << bit_depth) - 1)
    return min(10.0 * math.log10(peak * peak / mse), PSNR_CAP_DB)


def psnr_plane(a: np.ndarray, b: np.ndarray, bit_depth: int) -> float:
    """PSNR in dB with peak ``2**bit_depth - 1``, capped at :data:`PSNR_CAP_DB`."""
    return _psnr_from_mse(mse_plane(a, b), bit_depth)


def _gaussian_window() -> np.ndarray:
    x = np.arange(_WIN, dtype=np.float64) - (_WIN - 1) / 2
    g = np.exp(-(x * x) / (2 * _SIGMA * _SIGMA))
    return g / g.sum()  # separable: outer(g, g) is Matlab's fspecial('gaussian', 11, 1.5)


_GAUSS = _gaussian_window()


def _valid_filter(stack: np.ndarray) -> np.ndarray:
    """Separable Gaussian over the last two axes, keeping only fully covered samples."""
    r = _WIN // 2
    out = correlate1d(stack, _GAUSS, axis=-1, mode="nearest")[..., :, r:-r]
    out = correlate1d(out, _GAUSS, axis=-2, mode="nearest")[..., r:-r, :]
    return out


def _ssim_means(x: np.ndarray, y: np.ndarray, c1: float, c2: float) -> tuple[float, float]:
    """(mean SSIM, mean contrast-structure) over the valid window positions."""
    mu = _valid_filter(np.stack((x, y, x * x, y * y, x * y)))
    mx, my, sxx, syy, sxy = mu
    mx2, my2, mxy = mx * mx, my * my, mx * my
    vx, vy, cov = sxx - mx2, syy - my2, sxy - mxy
    cs = (2.0 * cov + c2) / (vx + vy + c2)
    lum = (2.0 * mxy + c1) / (mx2 + my2 + c1)
    return float(np.mean(lum * cs)), float(np.mean(cs))


def _halve(x: np.ndarray) -> np.ndarray:
    """2x2 average; an odd last row/column is paired with a copy of itself."""
    h, w = x.shape
    if h & 1 or w & 1:
        x = np.pad(x, ((0, h & 1), (0, w & 1)), mode="edge")
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def ms_ssim_scales(height: int, width: int) -> int:
    """How many of the 5 scales fit a plane of this size (0: too small for one window)."""
    n, s = 0, min(height, width)
    while n < len(MS_SSIM_WEIGHTS) and s >= _WIN:
        n += 1
        s = (s + 1) // 2
    return n


def ms_ssim(a: np.ndarray, b: np.ndarray, bit_depth: int) -> float:
    """Multi-scale SSIM of two planes (Wang 2003); see the module notes for small planes."""
    _check_pair(a, b)
    scales = ms_ssim_scales(*a.shape)
    if scales == 0:
        return float("nan")
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales])
    if scales < len(MS_SSIM_WEIGHTS):  # keep the standard total (1.0001, as published)
        weights = weights * (sum(MS_SSIM_WEIGHTS) / weights.sum())
    peak = float((1 << bit_depth) - 1)
    c1, c2 = (_K1 * peak) ** 2, (_K2 * peak) ** 2
    x, y = a.astype(np.float64), b.astype(np.float64)
    values = []
    for s in range(scales):
        ssim_mean, cs_mean = _ssim_means(x, y, c1, c2)
        values.append(ssim_mean if s == scales - 1 else cs_mean)
        if s < scales - 1:
            x, y = _halve(x), _halve(y)
    v = np.maximum(np.asarray(values), 0.0)
    return float(np.prod(v**weights))


def frame_metrics(ref: Frame, dist: Frame, *, ms_ssim: bool = True) -> dict[str, float]:
    """PSNR per plane (+ MSE), JVET-weighted psnr_yuv and luma MS-SSIM of ``dist`` against ``ref``."""
    fr, fd = ref.format, dist.format
    key_r = (fr.width, fr.height, fr.chroma, fr.bit_depth)
    key_d = (fd.width, fd.height, fd.chroma, fd.bit_depth)
    if key_r != key_d:
        raise FormatError(f"cannot compare frames of different formats: reference {fr}, distorted {fd}")
    depth = fr.bit_depth
    out: dict[str, float] = {}
    for name, pa, pb in zip("yuv", ref.planes, dist.planes):
        mse = mse_plane(pa, pb)
        out[f"psnr_{name}"] = _psnr_from_mse(mse, depth)
        out[f"mse_{name}"] = mse
    if fr.num_planes == 3:
        out["psnr_yuv"] = (6.0 * out["psnr_y"] + out["psnr_u"] + out["psnr_v"]) / 8.0
    else:
        out["psnr_yuv"] = out["psnr_y"]
    if ms_ssim:
        out["ms_ssim_y"] = _ms_ssim(ref.planes[0], dist.planes[0], depth)
    return out


_ms_ssim = ms_ssim  # frame_metrics' keyword argument shadows the function name

# Column order of written logs; other columns follow in order of first appearance.
_PREFERRED = (
    "frame", "bits", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "ms_ssim_y",
    "mse_y", "mse_u", "mse_v", "encode_s", "decode_s",
)


def _parse_cell(s: str) -> Any:
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def _format_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return repr(float(v))  # shortest string that reads back to the same double
    if isinstance(v, np.integer):
        return str(int(v))
    return str(v)


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None  # strict JSON has no NaN/inf
    if isinstance(v, np.generic):
        return _json_safe(v.item())
    return v


class MetricsLog:
    """Per-frame rows (``frame``, ``bits``, metric columns, timings), written as CSV or JSON."""

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()) -> None:
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows]

    def add(self, row: Mapping[str, Any]) -> None:
        """Append one frame's measures (``frame`` defaults to the row's position)."""
        r = dict(row)
        r.setdefault("frame", len(self.rows))
        self.rows.append(r)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def columns(self) -> list[str]:
        """Preferred columns first, then any others in order of first appearance."""
        seen: dict[str, None] = {}
        for r in self.rows:
            for k in r:
                seen.setdefault(k, None)
        first = [c for c in _PREFERRED if c in seen]
        return first + [c for c in seen if c not in _PREFERRED]

    def summary(self, fps: float | Fraction | None = None) -> dict[str, float]:
        """Per-sequence means of every numeric column, plus frame count, bit totals and kbps.

        ``bitrate_kbps`` (needs ``fps`` and a ``bits`` column) is total bits over duration.
        Frames lacking a column (or holding NaN) are left out of that column's mean.
        """
        out: dict[str, float] = {"frames": len(self.rows)}
        for col in self.columns:
            if col == "frame":
                continue
            vals = [r[col] for r in self.rows if col in r]
            if not vals or not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in vals):
                continue
            arr = np.asarray(vals, dtype=np.float64)
            arr = arr[~np.isnan(arr)]
            if col == "bits":
                out["bits_total"] = float(arr.sum())
                out["bits_mean"] = float(arr.mean()) if arr.size else float("nan")
                if fps is not None and self.rows:
                    seconds = len(self.rows) / float(fps)
                    out["bitrate_kbps"] = float(arr.sum()) / seconds / 1000.0
            else:
                out[col] = float(arr.mean()) if arr.size else float("nan")
        return out

    def write_csv(self, path: str | os.PathLike) -> None:
        """One row per frame; floats in shortest round-trip form; missing cells left empty."""
        cols = self.columns

        def write(f):
            w = csv.writer(f)
            w.writerow(cols)
            for r in self.rows:
                w.writerow([_format_cell(r.get(c)) for c in cols])

        atomic_write(path, write)

    def write_json(self, path: str | os.PathLike, fps: float | Fraction | None = None) -> None:
        """``{"summary": ..., "frames": [...]}``; NaN/inf become ``null``."""
        doc = {
            "summary": {k: _json_safe(v) for k, v in self.summary(fps).items()},
            "frames": [{k: _json_safe(v) for k, v in r.items()} for r in self.rows],
        }
        atomic_write(path, lambda f: json.dump(doc, f, indent=1, allow_nan=False))

    @classmethod
    def read_csv(cls, path: str | os.PathLike) -> MetricsLog:
        """Read a log written by :meth:`write_csv` (numbers come back as int/float)."""
        path = Path(path)
        try:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if not header or "frame" not in header:
                    raise InputError(f"{path}: not a metrics CSV (no header with a 'frame' column)")
                rows = []
                for n, cells in enumerate(reader, start=2):
                    if len(cells) != len(header):
                        raise InputError(f"{path}: line {n} has {len(cells)} cells, header has {len(header)}")
                    rows.append({k: _parse_cell(v) for k, v in zip(header, cells) if v != ""})
        except OSError as e:
            raise InputError(f"cannot read {path}: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a text CSV file") from None
        return cls(rows)

    @classmethod
    def read_json(cls, path: str | os.PathLike) -> MetricsLog:
        """Read the ``frames`` of a log written by :meth:`write_json` (nulls are dropped)."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise InputError(f"cannot read {path}: {e.strerror or e}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{path}: not a JSON metrics log ({e})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("frames"), list):
            raise InputError(f"{path}: not a JSON metrics log (no 'frames' list)")
        return cls({k: v for k, v in r.items() if v is not None} for r in doc["frames"])
