"""The encoder's one lambda policy: HM's Lagrange multipliers for all-intra coding
(TEncSlice::initEncSlice / setUpLambda).

:func:`slice_lambdas` is the one entry point: every lambda of an encode (RD decisions, SATD
decisions, SAO, the quantizers' per-component lambdas, the chroma distortion weight) comes
from it, derived once from the slice QP. The formula functions after it are its parts,
public for tools that build a ``QuantBatch`` by hand.

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

The encoder measures its own SSE in the samples' bit depth, so its RD lambda is the same
formula at QP' = QP + 6 (bitDepth - 8), i.e. 4^(bitDepth - 8) times the 8-bit one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from codeclab.codecs.hevc.scalar_quant import chroma_qp

__all__ = ["SliceLambdas", "slice_lambdas", "intra_lambda", "chroma_weight", "chroma_lambda",
           "sqrt_lambda"]


@dataclass(frozen=True)
class SliceLambdas:
    """The lambdas of one slice, in the units each user needs."""

    rd: float                           # SSE in the samples' bit depth + rd * bits
    satd: float                         # SATD + satd * bits (rough decisions): sqrt(rd)
    chroma_weight: float                # chroma SSE is weighted by this in RD costs
    quant: tuple[float, float, float]   # Y, Cb, Cr: QuantBatch.lam (SSE in 8-bit units)


def slice_lambdas(qp: int, bit_depth: int) -> SliceLambdas:
    """All lambdas of an I slice at slice QP ``qp`` (checked by ``StreamParams.check``) for
    ``bit_depth``-bit samples. Our streams code no chroma QP offsets (PPS and slice), so the
    chroma QPs are Table 8-10's of ``qp`` and Cb and Cr share one weight."""
    lam = intra_lambda(qp)
    rd = intra_lambda(qp + 6 * (bit_depth - 8))
    return SliceLambdas(rd=rd, satd=sqrt_lambda(rd), chroma_weight=chroma_weight(qp),
                        quant=(lam, chroma_lambda(lam, qp), chroma_lambda(lam, qp)))


def intra_lambda(qp: float, num_b_frames: int = 0) -> float:
    """Lambda of an I slice at slice QP ``qp`` (SSE in 8-bit units + lambda * bits)."""
    scale = 1.0 - min(max(0.05 * num_b_frames, 0.0), 0.5)
    return 0.57 * scale * 2.0 ** ((qp - 12) / 3.0)


def _mapped_chroma_qp(qp: int, offset: int, chroma_format_idc: int) -> int:
    """HM's qpc of setUpLambda: getScaledChromaQP(QP + offset), or QP when that is < 0."""
    if qp + offset < 0:
        return qp
    return chroma_qp(qp, 1, cb_qp_offset=offset, chroma_format_idc=chroma_format_idc)


def chroma_weight(qp: int, offset: int = 0, chroma_format_idc: int = 1) -> float:
    """HM's chroma distortion weight 2^((QP - QPc) / 3)."""
    return 2.0 ** ((qp - _mapped_chroma_qp(qp, offset, chroma_format_idc)) / 3.0)


def chroma_lambda(lam: float, qp: int, offset: int = 0, chroma_format_idc: int = 1) -> float:
    """Lambda for a chroma component's RDOQ: lambda / chroma_weight."""
    return lam / chroma_weight(qp, offset, chroma_format_idc)


def sqrt_lambda(lam: float) -> float:
    """The multiplier of mode bits in SATD-based intra mode decision."""
    return math.sqrt(lam)
