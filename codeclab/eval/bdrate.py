"""Bjontegaard delta rate / PSNR: the one implementation the whole project uses.

Two interpolations of each rate-distortion curve are offered:

* ``"pchip"`` (default) — what the JCT-VC/JVET common-test-condition Excel sheets compute
  (JCTVC-E137 onward, JVET-T2010): piecewise cubic Hermite interpolation of log10(rate) as
  a function of PSNR through the points sorted by PSNR, with Fritsch-Butland slopes at
  interior points (weighted harmonic mean of the neighbouring secants, zero at a local
  extremum) and the shape-preserving three-point formula at both ends (Moler's ``pchip``,
  the sheet's ``pchipend``). Each cubic piece is integrated analytically. Works from 2
  points (2 points give a straight line).
* ``"cubic"`` — the original VCEG-M33: least-squares cubic polynomial of log-rate against
  PSNR, integrated analytically. Needs at least 4 points.

BD-rate is ``10**(mean(log10 R_B - log10 R_A)) - 1`` in percent, the mean taken over the
PSNR interval where both curves have data (the log base cancels, so this equals the
sheet's ``exp`` of natural-log differences). BD-PSNR swaps the axes: mean PSNR difference
over the common log10-rate interval.

Input may come in any order (points are sorted by the integration variable). Curves that
are not monotone (rate falling while PSNR rises) are still interpolated as given: "pchip"
keeps each piece between its neighbours' values, "cubic" fits through them; the result is
then an average over a curve that is not a function of quality in the usual sense, so check
the points. Equal values of the integration variable within one curve, non-positive or
non-finite numbers, too few points and curves whose intervals do not overlap raise
:class:`~codeclab.base.errors.UsageError` with a message naming the problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from codeclab.base.errors import UsageError

__all__ = ["bd_rate", "bd_psnr", "bd_rate_components", "pchip_integral", "Method"]

Method = Literal["cubic", "pchip"]


def _points(rate: Sequence[float], psnr: Sequence[float], who: str) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64).ravel()
    q = np.asarray(psnr, dtype=np.float64).ravel()
    if r.size != q.size:
        raise UsageError(f"BD: {who} has {r.size} rates but {q.size} quality values")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        raise UsageError(f"BD: {who} has a non-finite rate or quality value")
    if np.any(r <= 0):
        raise UsageError(f"BD: {who} has a rate <= 0 (log-rate undefined)")
    return np.log10(r), q


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Derivatives at the knots, as Matlab's pchip and the JCT-VC/JVET sheet compute them."""
    h = np.diff(x)
    delta = np.diff(y) / h
    n = x.size
    d = np.zeros(n)
    if n == 2:
        d[:] = delta[0]
        return d
    # interior: weighted harmonic mean where the secants agree in sign, else 0
    w1 = 2 * h[1:] + h[:-1]
    w2 = h[1:] + 2 * h[:-1]
    same = np.sign(delta[:-1]) * np.sign(delta[1:]) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        hm = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
    d[1:-1] = np.where(same, hm, 0.0)

    def end(h1: float, h2: float, d1: float, d2: float) -> float:
        s = ((2 * h1 + h2) * d1 - h1 * d2) / (h1 + h2)
        if np.sign(s) != np.sign(d1):
            return 0.0
        if np.sign(d1) != np.sign(d2) and abs(s) > abs(3 * d1):
            return 3 * d1
        return s

    d[0] = end(h[0], h[1], delta[0], delta[1])
    d[-1] = end(h[-1], h[-2], delta[-1], delta[-2])
    return d


def pchip_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Exact integral over [lo, hi] (inside [x0, xn]) of the PCHIP through sorted (x, y)."""
    d = _pchip_slopes(x, y)
    h = np.diff(x)
    delta = np.diff(y) / h
    # piece k in local s = t - x[k]: y_k + d_k s + c2 s^2 + c3 s^3
    c2 = (3 * delta - 2 * d[:-1] - d[1:]) / h
    c3 = (d[:-1] - 2 * delta + d[1:]) / (h * h)

    def prim(t: float) -> float:  # integral from x[0] to t
        k = int(np.clip(np.searchsorted(x, t, side="right") - 1, 0, x.size - 2))
        s = t - x[k]
        whole = h[:k]
        full = np.sum(y[:k] * whole + d[:k] * whole**2 / 2 + c2[:k] * whole**3 / 3 + c3[:k] * whole**4 / 4)
        return float(full + y[k] * s + d[k] * s**2 / 2 + c2[k] * s**3 / 3 + c3[k] * s**4 / 4)

    return prim(hi) - prim(lo)


def _cubic_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    p = np.polyint(np.polyfit(x, y, 3))
    return float(np.polyval(p, hi) - np.polyval(p, lo))


def _mean_delta(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray, method: str, axis: str) -> float:
    """Mean of f_B - f_A over the common x interval, f interpolating y as a function of x."""
    if method not in ("pchip", "cubic"):
        raise UsageError(f"BD: unknown interpolation {method!r} (want 'pchip' or 'cubic')")
    need = 4 if method == "cubic" else 2
    curves = []
    for who, x, y in (("anchor", xa, ya), ("test", xb, yb)):
        if x.size < need:
            raise UsageError(f"BD: {who} has {x.size} points, {method} needs at least {need}")
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        if np.any(np.diff(x) == 0):
            raise UsageError(f"BD: {who} has two points with the same {axis}; cannot interpolate")
        curves.append((x, y))
    (xa, ya), (xb, yb) = curves
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if not hi > lo:
        raise UsageError(
            f"BD: the {axis} ranges of anchor [{xa[0]:.4g}, {xa[-1]:.4g}] and test "
            f"[{xb[0]:.4g}, {xb[-1]:.4g}] do not overlap"
        )
    integral = pchip_integral if method == "pchip" else _cubic_integral
    return float((integral(xb, yb, lo, hi) - integral(xa, ya, lo, hi)) / (hi - lo))


def bd_rate(
    rate_a: Sequence[float],
    psnr_a: Sequence[float],
    rate_b: Sequence[float],
    psnr_b: Sequence[float],
    *,
    method: Method = "pchip",
) -> float:
    """Bit-rate difference of B against anchor A at equal quality, in percent (negative: B saves)."""
    la, qa = _points(rate_a, psnr_a, "anchor")
    lb, qb = _points(rate_b, psnr_b, "test")
    return float((10.0 ** _mean_delta(qa, la, qb, lb, method, "quality") - 1.0) * 100.0)


def bd_psnr(
    rate_a: Sequence[float],
    psnr_a: Sequence[float],
    rate_b: Sequence[float],
    psnr_b: Sequence[float],
    *,
    method: Method = "pchip",
) -> float:
    """Quality difference of B against anchor A at equal rate, in dB (positive: B is better)."""
    la, qa = _points(rate_a, psnr_a, "anchor")
    lb, qb = _points(rate_b, psnr_b, "test")
    return _mean_delta(la, qa, lb, qb, method, "log-rate")


def bd_rate_components(
    anchor: Mapping[str, Sequence[float]],
    test: Mapping[str, Sequence[float]],
    *,
    method: Method = "pchip",
) -> dict[str, float]:
    """BD-rate per component and for the (6Y+U+V)/8 PSNR, as in JVET CTC tables.

    ``anchor``/``test``: ``{"rate": [...], "psnr_y": [...], "psnr_u": [...], "psnr_v": [...]}``.
    Without ``psnr_u``/``psnr_v`` (4:0:0) only ``Y`` and ``YUV`` (= Y) are returned.
    """
    for who, d in (("anchor", anchor), ("test", test)):
        for k in ("rate", "psnr_y"):
            if k not in d:
                raise UsageError(f"BD: {who} has no {k!r} values")
    out = {"Y": bd_rate(anchor["rate"], anchor["psnr_y"], test["rate"], test["psnr_y"], method=method)}
    chroma = all(k in d for d in (anchor, test) for k in ("psnr_u", "psnr_v"))
    if not chroma:
        out["YUV"] = out["Y"]
        return out

    def yuv(d: Mapping[str, Sequence[float]]) -> np.ndarray:
        return (6 * np.asarray(d["psnr_y"], float) + np.asarray(d["psnr_u"], float) + np.asarray(d["psnr_v"], float)) / 8

    for c in ("u", "v"):
        out[c.upper()] = bd_rate(anchor["rate"], anchor[f"psnr_{c}"], test["rate"], test[f"psnr_{c}"], method=method)
    out["YUV"] = bd_rate(anchor["rate"], yuv(anchor), test["rate"], yuv(test), method=method)
    return out
