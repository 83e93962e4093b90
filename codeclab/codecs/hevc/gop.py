"""Picture structures: which pictures are I or P, their POC, QP and reference pictures.

``ai`` codes every picture as an IDR at the stream QP. ``ldp`` is HM 16.20's low-delay P
configuration (``encoder_lowdelay_P_main.cfg``): a GOP of 4 P pictures after the first
IDR, each predicted from the previous picture and the last GOP-ends (POC deltas -1 -5 -9
-13 / -1 -2 -6 -10 / -1 -3 -7 -11 / -1 -4 -8 -12, of which ``refs`` are used), with HM's
QP offsets: +5 / +4 / +5 / +1 plus the QP offset model min(3, max(0, floor(0.259 * QP' -
6.5 + 0.5))) on the first three (QP' the QP after the offset), and -1 for the IDR
(IntraQPOffset). ``intra_period`` > 0 starts a new IDR every that many pictures.

HM 16.20 with LambdaFromQpEnable (as in that configuration) derives each picture's lambda
from its own QP with the same 0.57 * 2^((QP - 12) / 3) as intra pictures, so the encoder's
one lambda policy (:mod:`codeclab.codecs.hevc.lambdas`) serves every picture.
"""

from __future__ import annotations

import math

from codeclab.base.errors import UsageError
from codeclab.codecs.hevc.params import SliceInfo

__all__ = ["GOPS", "GopPlanner"]

GOPS = ("ai", "ldp")

# HM's encoder_lowdelay_P_main.cfg, Frame1..Frame4: (QPoffset, model offset, model scale, deltas)
_LDP = [(5, -6.5, 0.2590, (-1, -5, -9, -13)), (4, -6.5, 0.2590, (-1, -2, -6, -10)),
        (5, -6.5, 0.2590, (-1, -3, -7, -11)), (1, 0.0, 0.0, (-1, -4, -8, -12))]
_LDP_INTRA_QP_OFFSET = -1
_LOOKAHEAD = 16


def _ldp_qp(qp: int, k: int, min_qp: int) -> int:
    off, model_off, scale, _ = _LDP[k]
    q = qp + off
    if scale != 0:
        q += math.floor(min(max(q * scale + model_off + 0.5, 0.0), 3.0))
    return min(max(q, min_qp), 51)


class GopPlanner:
    """The :class:`SliceInfo` of each picture in coding order (= output order: no
    reordering in these structures)."""

    def __init__(self, gop: str, qp: int, refs: int = 4, intra_period: int = 0,
                 bit_depth: int = 8) -> None:
        if gop not in GOPS:
            raise UsageError(f"hevc: unknown gop {gop!r} (have {', '.join(GOPS)})")
        if not 1 <= refs <= 4:
            raise UsageError(f"hevc: refs {refs} outside 1..4")
        if intra_period < 0:
            raise UsageError(f"hevc: intra_period {intra_period} is negative")
        self.gop, self.qp, self.refs, self.intra_period = gop, qp, refs, intra_period
        self.min_qp = -6 * (bit_depth - 8)

    @property
    def max_refs(self) -> int:
        """DPB pictures the structure keeps besides the current one (0 for all-intra)."""
        return 0 if self.gop == "ai" else self.refs

    def _idr_at(self, index: int) -> int:
        """Index of the IDR that starts the sequence of picture ``index``."""
        if self.gop == "ai":
            return index
        return index - index % self.intra_period if self.intra_period else 0

    def _refs(self, index: int) -> tuple[int, ...]:
        """POCs of RefPicList0 of picture ``index`` (empty for an IDR)."""
        start = self._idr_at(index)
        poc = index - start
        if poc == 0:
            return ()
        deltas = _LDP[(poc - 1) % 4][3]
        return tuple(poc + d for d in deltas if poc + d >= 0)[: self.refs]

    def slice_info(self, index: int) -> SliceInfo:
        """Picture ``index`` (0-based, coding order)."""
        start = self._idr_at(index)
        poc = index - start
        if poc == 0:
            qp = self.qp if self.gop == "ai" else min(max(self.qp + _LDP_INTRA_QP_OFFSET, self.min_qp), 51)
            return SliceInfo("I", 0, qp)
        refs = self._refs(index)
        # pictures later ones of this sequence still need (the RPS must keep them)
        later: set[int] = set()
        for j in range(index + 1, index + 1 + _LOOKAHEAD):
            if self._idr_at(j) != start:
                break
            later.update(r for r in self._refs(j) if r < poc)
        keep = tuple(sorted((later - set(refs)), reverse=True))
        if len(refs) + len(keep) > self.refs:
            raise AssertionError(f"gop {self.gop}: picture {index} keeps {refs + keep} (> {self.refs})")
        return SliceInfo("P", poc, _ldp_qp(self.qp, (poc - 1) % 4, self.min_qp), idr=False,
                         refs=tuple(r - poc for r in refs), keep=tuple(r - poc for r in keep))
