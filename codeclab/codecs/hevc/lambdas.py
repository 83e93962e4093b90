"""HM's Lagrange multipliers for all-intra coding (TEncSlice::initEncSlice / setUpLambda).

HM (16.x, default build without FULL_NBIT) for an I slice:

    lambda = 0.57 * dLambda_scale * 2^((QP - 12) / 3),
    dLambda_scale = 1 - Clip3(0, 0.5, 0.05 * NumberBFrames), NumberBFrames = GOPSize - 1.

The all-intra configuration has GOPSize 1, so dLambda_scale = 1 and lambda = 0.57 *
2^((QP-12)/3); no hierarchical-depth factor (depth 0), no lambda modifier for I slices, and
no bit-depth term (bitdepth_luma_qp_scale = 0: HM measures distortion in 8-bit units, which
is why rdoq.py's errScale divides by 2^(2 (bitDepth - 8))). QP is the signalled slice QP.

Chroma (setUpLambda): weight = 2^((QP - QPc) / 3) with QPc the mapped chroma QP (Table
8-10 with the PPS/slice offset; QPc = QP when QP + offset < 0), and lambda_c = lambda /
weight. Equivalently chroma SSE is multiplied by the weight in luma-lambda units.

Intra mode decision by SATD uses sqrt(lambda) (HM's sqrtLambda for the Hadamard cost:
cost = SATD + sqrt(lambda) * bits).
"""

from __future__ import annotations

import math

from codeclab.codecs.hevc.scalar_quant import _QPC_TABLE

__all__ = ["intra_lambda", "chroma_weight", "chroma_lambda", "sqrt_lambda"]


def intra_lambda(qp: float, num_b_frames: int = 0) -> float:
    """Lambda of an I slice at slice QP ``qp`` (SSE in 8-bit units + lambda * bits)."""
    scale = 1.0 - min(max(0.05 * num_b_frames, 0.0), 0.5)
    return 0.57 * scale * 2.0 ** ((qp - 12) / 3.0)


def _mapped_chroma_qp(qp: int, offset: int, chroma_format_idc: int) -> int:
    """HM's qpc of setUpLambda: getScaledChromaQP(QP + offset), or QP when that is < 0."""
    qpi = qp + offset
    if qpi < 0:
        return qp
    qpi = min(qpi, 57)
    if chroma_format_idc != 1:
        return min(qpi, 51)
    if qpi < 30:
        return qpi
    return _QPC_TABLE[qpi - 30] if qpi <= 43 else qpi - 6


def chroma_weight(qp: int, offset: int = 0, chroma_format_idc: int = 1) -> float:
    """HM's chroma distortion weight 2^((QP - QPc) / 3)."""
    return 2.0 ** ((qp - _mapped_chroma_qp(qp, offset, chroma_format_idc)) / 3.0)


def chroma_lambda(lam: float, qp: int, offset: int = 0, chroma_format_idc: int = 1) -> float:
    """Lambda for a chroma component's RDOQ: lambda / chroma_weight."""
    return lam / chroma_weight(qp, offset, chroma_format_idc)


def sqrt_lambda(lam: float) -> float:
    """The multiplier of mode bits in SATD-based intra mode decision."""
    return math.sqrt(lam)
