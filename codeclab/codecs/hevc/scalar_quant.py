"""HEVC scalar quantization: HM's forward quantizer and the normative scaling (8.6.2/8.6.3).

QP convention used everywhere in this package: ``qp`` is the *signalled* QP (QpY, or QpC
from :func:`chroma_qp`), range -QpBdOffset..51; the functions add QpBdOffset = 6*(bitDepth-8)
themselves (the spec's qP = Qp'Y = QpY + QpBdOffsetY). For 8-bit both are the same.
:func:`check_qp` is the one check of that range (and its one error message), for the
codec's options and stream parameters and for the kernels' QP arguments alike.
Flat scaling only (scaling_list_enabled_flag = 0, m = 16), no extended precision
(coeffMin/Max = -32768/32767, log2TransformRange = 15).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from codeclab.base.errors import UsageError

__all__ = [
    "QUANT_SCALES",
    "LEVEL_SCALES",
    "COEFF_MIN",
    "COEFF_MAX",
    "check_qp",
    "qp_prime",
    "quant_shift",
    "quantize_sq",
    "dequantize",
    "scaled_coeffs",
    "chroma_qp",
]

QUANT_SCALES = (26214, 23302, 20560, 18396, 16384, 14564)
LEVEL_SCALES = (40, 45, 51, 57, 64, 72)
COEFF_MIN, COEFF_MAX = -32768, 32767
_QS = np.array(QUANT_SCALES, dtype=np.int64)
_LS = np.array(LEVEL_SCALES, dtype=np.int64)
# 8-10 (ChromaArrayType == 1): QpC as a function of qPi for 30 <= qPi <= 43
_QPC_TABLE = (29, 30, 31, 32, 33, 33, 34, 34, 35, 35, 36, 36, 37, 37)


def check_qp(qp: int | np.ndarray, bit_depth: int | None) -> None:
    """Raise UsageError unless every signalled QP in ``qp`` lies in -QpBdOffset..51.

    bit_depth None: the coded depth is not known yet (it will be the source's), so only the
    range of the deepest depth we code (10-bit: -12..51) can be checked."""
    lo = -12 if bit_depth is None else -6 * (bit_depth - 8)
    q = np.asarray(qp)
    if q.size and not (lo <= q.min() and q.max() <= 51):  # (min/max: cheap on every call)
        depth = "" if bit_depth is None else f" for {bit_depth}-bit"
        raise UsageError(f"hevc: qp {q[(q < lo) | (q > 51)].flat[0]} outside {lo}..51{depth}")


def qp_prime(qp: int | np.ndarray, bit_depth: int) -> np.ndarray:
    """qP = QP + QpBdOffset (int64, same shape) of checked signalled QPs (:func:`check_qp`)."""
    check_qp(qp, bit_depth)
    return np.asarray(qp, dtype=np.int64) + 6 * (bit_depth - 8)


def quant_shift(qp: int, log2_size: int, bit_depth: int) -> int:
    """HM's qbits = 14 + qP/6 + transformShift, transformShift = 15 - bitDepth - log2(n)
    (the same for transform-skip blocks, whose forward 'transform' is a << transformShift)."""
    return 14 + (qp + 6 * (bit_depth - 8)) // 6 + 15 - bit_depth - log2_size


def _per_block(v: np.ndarray, ndim: int) -> np.ndarray:
    """Broadcast a scalar or per-block (B,) array against (n, n) / (B, n, n) data."""
    return v if v.ndim == 0 else v.reshape(v.shape + (1,) * (ndim - 1))


def scaled_coeffs(coeffs: np.ndarray, qp: int | np.ndarray, log2_size: int,
                  bit_depth: int) -> np.ndarray:
    """Unquantized level value |c| * quantScale / 2^qbits, signed, float64, in *level units*:
    ``quantize_sq`` with rounding r returns sign * floor(|scaled| + r) (exactly, up to HM's
    integer offset). What RDOQ and the learned quantizers start from."""
    c = np.asarray(coeffs, dtype=np.int64)
    qpp = _per_block(qp_prime(qp, bit_depth), c.ndim)
    qbits = 14 + qpp // 6 + 15 - bit_depth - log2_size
    return c * _QS[qpp % 6] / np.exp2(qbits)


@njit(cache=True)
def _quant_kernel(c, qpp, log2_size, bit_depth, add512, out):  # pragma: no cover - numba
    for b in range(c.shape[0]):
        q = qpp[b] if qpp.shape[0] > 1 else qpp[0]
        qbits = 14 + q // 6 + 15 - bit_depth - log2_size
        scale = np.int64(_QS[q % 6])
        add = np.int64(add512) << (qbits - 9)
        for y in range(c.shape[1]):
            for x in range(c.shape[2]):
                v = np.int64(c[b, y, x])
                lvl = (abs(v) * scale + add) >> qbits
                out[b, y, x] = max(-lvl, COEFF_MIN) if v < 0 else min(lvl, COEFF_MAX)


@njit(cache=True)
def _dequant_kernel(lv, qpp, log2_size, bit_depth, out):  # pragma: no cover - numba
    bd_shift = bit_depth + log2_size - 5
    rnd = np.int64(1) << (bd_shift - 1)
    for b in range(lv.shape[0]):
        q = qpp[b] if qpp.shape[0] > 1 else qpp[0]
        scale = np.int64(16 * _LS[q % 6]) << (q // 6)
        for y in range(lv.shape[1]):
            for x in range(lv.shape[2]):
                v = np.int64(lv[b, y, x])
                if v == 0:
                    out[b, y, x] = 0
                else:
                    d = (v * scale + rnd) >> bd_shift
                    out[b, y, x] = min(max(d, COEFF_MIN), COEFF_MAX)


def _prep(a: np.ndarray, qp: int | np.ndarray, bit_depth: int, what: str
          ) -> tuple[np.ndarray, np.ndarray, bool]:
    a = np.asarray(a)
    single = a.ndim == 2
    b = a[None] if single else a
    if b.ndim != 3:
        raise ValueError(f"{what}: expected (n, n) or (B, n, n), got {a.shape}")
    qarr = qp_prime(qp, bit_depth).reshape(-1)
    if qarr.shape[0] not in (1, b.shape[0]):
        raise ValueError(f"{what}: {qarr.shape[0]} QPs for {b.shape[0]} blocks")
    return b, qarr, single


def quantize_sq(coeffs: np.ndarray, qp: int | np.ndarray, log2_size: int, bit_depth: int,
                *, rounding: float = 171 / 512) -> np.ndarray:
    """HM's dead-zone scalar quantizer (TComTrQuant::xQuant without RDOQ), int32 levels.

    level = sign(c) * ((|c| * quantScale[qP%6] + offset) >> qbits), offset = round(rounding*512)
    << (qbits - 9): HM uses 171/512 for I slices, 85/512 for P/B. Works on (n, n) or (B, n, n);
    qp scalar or per block (B,). Levels are clipped to -32768..32767 as HM does.
    """
    c, qarr, single = _prep(coeffs, qp, bit_depth, "quantize_sq")
    out = np.empty(c.shape, dtype=np.int32)
    _quant_kernel(c, qarr, log2_size, bit_depth, int(round(rounding * 512)), out)
    return out[0] if single else out


def dequantize(levels: np.ndarray, qp: int | np.ndarray, log2_size: int,
               bit_depth: int) -> np.ndarray:
    """Normative scaling 8.6.3 (flat m = 16): d = Clip3(coeffMin, coeffMax, ((lvl * 16 *
    levelScale[qP%6] << (qP/6)) + (1 << (bdShift-1))) >> bdShift), bdShift = bitDepth +
    log2(n) - 5. int32 out; same shapes as quantize_sq."""
    lv, qarr, single = _prep(levels, qp, bit_depth, "dequantize")
    out = np.empty(lv.shape, dtype=np.int32)
    _dequant_kernel(lv, qarr, log2_size, bit_depth, out)
    return out[0] if single else out


def chroma_qp(qp_y: int, c_idx: int, cb_qp_offset: int = 0, cr_qp_offset: int = 0,
              chroma_format_idc: int = 1, bit_depth_c: int = 8) -> int:
    """QpCb / QpCr of 8.6.1 (without QpBdOffsetC, matching this module's QP convention).

    qPi = Clip3(-QpBdOffsetC, 57, QpY + offset) where offset is pps + slice offset of the
    component; for 4:2:0 qPi -> QpC through table 8-10, otherwise QpC = Min(qPi, 51).
    """
    if c_idx not in (1, 2):
        raise ValueError(f"chroma_qp: c_idx must be 1 or 2, got {c_idx}")
    off = cb_qp_offset if c_idx == 1 else cr_qp_offset
    qpi = min(max(qp_y + off, -6 * (bit_depth_c - 8)), 57)
    if chroma_format_idc != 1:
        return min(qpi, 51)
    if qpi < 30:
        return qpi
    if qpi <= 43:
        return _QPC_TABLE[qpi - 30]
    return qpi - 6
