"""Picture structures: which pictures are I, P or B, their coding order, POC, QP and
reference pictures, as HM 16.20's configurations define them.

``ai`` codes every picture as an IDR at the stream QP. ``ldp`` / ``ldb`` are HM's low-delay
configurations (``encoder_lowdelay_P_main.cfg`` / ``encoder_lowdelay_main.cfg``, which
differ only in the slice type): a GOP of 4 P (or generalised B: both lists hold the same
earlier pictures) pictures after the first IDR, each predicted from the previous picture
and the last GOP-ends (POC deltas -1 -5 -9 -13 / -1 -2 -6 -10 / -1 -3 -7 -11 / -1 -4 -8 -12,
of which ``refs`` are used), QP offsets +5 / +4 / +5 / +1 plus the QP offset model on the
first three, and -1 for the IDR (IntraQPOffset); no reordering. ``ra`` is HM's random
access (``encoder_randomaccess_main.cfg``): hierarchical B pictures in GOPs of 16 coded
in the order 16 8 4 2 1 3 6 5 7 12 10 9 11 14 13 15, two active references per list, QP
offsets 1 / 1 / 4 / 5 / 6 by hierarchy level plus the QP offset model, -3 for intra
pictures; ``intra_period`` (a multiple of 16) places a CRA picture every that many
pictures, whose leading pictures (RASL) still reference the pictures before it while the
pictures after it in output order do not. In the low-delay structures ``intra_period``
starts a new IDR every that many pictures. 0: only the first picture is intra.

The QP offset model (HM's QPOffsetModelOffset / Scale) adds min(3, max(0, floor(scale *
QP' + offset + 0.5))) to QP' (the QP after the GOP entry's offset). HM 16.20 with
LambdaFromQpEnable (as in these configurations) derives each picture's lambda from its
own QP with the same 0.57 * 2^((QP - 12) / 3) as intra pictures, so the encoder's one
lambda policy (:mod:`codeclab.codecs.hevc.lambdas`) serves every picture.

The planner keeps in each picture's reference picture set exactly the decoded pictures
it or a later one (up to two GOPs ahead) references; references to pictures that do not
exist (before the first one, past the end of the input) are dropped, as HM drops them.
The decoded picture buffer size and the reordering depth the SPS declares come from a
dry run of the structure.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from codeclab.base.errors import UsageError
from codeclab.bitstream.nal import NAL_CRA, NAL_RASL_R
from codeclab.codecs.hevc.params import SliceInfo

__all__ = ["GOPS", "GopPlanner"]

GOPS = ("ai", "ldp", "ldb", "ra")


class _Entry(NamedTuple):
    """One ``FrameN`` line of an HM configuration."""

    offset: int                 # POC within the GOP
    qp_offset: int
    model_offset: float         # QPOffsetModelOffset
    model_scale: float          # QPOffsetModelScale
    active: int                 # #ref_pics_active (per list)
    deltas: tuple[int, ...]     # reference pictures (POC deltas)


_LD = (_Entry(1, 5, -6.5, 0.2590, 4, (-1, -5, -9, -13)), _Entry(2, 4, -6.5, 0.2590, 4, (-1, -2, -6, -10)),
       _Entry(3, 5, -6.5, 0.2590, 4, (-1, -3, -7, -11)), _Entry(4, 1, 0.0, 0.0, 4, (-1, -4, -8, -12)))
_RA = (_Entry(16, 1, 0.0, 0.0, 2, (-16, -24, -32)),
       _Entry(8, 1, -4.8848, 0.2061, 2, (-8, -16, 8)),
       _Entry(4, 4, -5.7476, 0.2286, 2, (-4, -12, 4, 12)),
       _Entry(2, 5, -5.90, 0.2333, 2, (-2, -10, 2, 6, 14)),
       _Entry(1, 6, -7.1444, 0.3, 2, (-1, 1, 3, 7, 15)),
       _Entry(3, 6, -7.1444, 0.3, 2, (-1, -3, 1, 5, 13)),
       _Entry(6, 5, -5.90, 0.2333, 2, (-2, -6, 2, 10)),
       _Entry(5, 6, -7.1444, 0.3, 2, (-1, -5, 1, 3, 11)),
       _Entry(7, 6, -7.1444, 0.3, 2, (-1, -3, -7, 1, 9)),
       _Entry(12, 4, -5.7476, 0.2286, 2, (-4, -12, 4)),
       _Entry(10, 5, -5.90, 0.2333, 2, (-2, -10, 2, 6)),
       _Entry(9, 6, -7.1444, 0.3, 2, (-1, -9, 1, 3, 7)),
       _Entry(11, 6, -7.1444, 0.3, 2, (-1, -3, -11, 1, 5)),
       _Entry(14, 5, -5.90, 0.2333, 2, (-2, -6, -14, 2)),
       _Entry(13, 6, -7.1444, 0.3, 2, (-1, -5, -13, 1, 3)),
       _Entry(15, 6, -7.1444, 0.3, 2, (-1, -3, -7, -15, 1)))
_INTRA_QP_OFFSET = {"ai": 0, "ldp": -1, "ldb": -1, "ra": -3}


class GopPlanner:
    """Plans pictures batch by batch: :meth:`batch_size` frames (in output order) are
    buffered, then :meth:`plan` gives their coding order and slice headers."""

    def __init__(self, gop: str, qp: int, refs: int = 4, intra_period: int = 0,
                 bit_depth: int = 8) -> None:
        if gop not in GOPS:
            raise UsageError(f"hevc: unknown gop {gop!r} (have {', '.join(GOPS)})")
        if not 1 <= refs <= 4:
            raise UsageError(f"hevc: refs {refs} outside 1..4")
        if intra_period < 0:
            raise UsageError(f"hevc: intra_period {intra_period} is negative")
        if gop == "ra" and intra_period % 16:
            raise UsageError(f"hevc: gop ra needs an intra_period that is a multiple of 16, not {intra_period}")
        self.gop, self.qp, self.refs, self.intra_period = gop, qp, refs, intra_period
        self.min_qp = -6 * (bit_depth - 8)
        self.gop_size = 16 if gop == "ra" else 1
        self._reset()
        self.max_refs, self.max_reorder = self._dry_run()
        self._reset()

    def _reset(self) -> None:
        self._decoded: list[int] = []   # POCs in the decoded picture buffer (the last RPS + the last picture)
        self._idr_index = 0             # output index of the current sequence's IDR
        self._cra = -1                  # POC of the last CRA (-1: none)

    # ---------------------------------------------------------------- structure ---------
    def _qp(self, e: _Entry | None) -> int:
        if e is None:  # an intra picture
            q = self.qp + _INTRA_QP_OFFSET[self.gop]
        else:
            q = self.qp + e.qp_offset
            if e.model_scale != 0:
                q += math.floor(min(max(q * e.model_scale + e.model_offset + 0.5, 0.0), 3.0))
        return min(max(q, self.min_qp), 51)

    def _is_intra(self, index: int) -> bool:
        if self.gop == "ai":
            return True
        return index == 0 or (self.intra_period > 0 and index % self.intra_period == 0)

    def _entry(self, poc: int) -> _Entry:
        if self.gop == "ra":
            return next(e for e in _RA if e.offset == (poc - 1) % 16 + 1)
        return _LD[(poc - 1) % 4]

    def _deltas(self, poc: int) -> tuple[int, ...]:
        d = self._entry(poc).deltas
        return d if self.gop == "ra" else d[: self.refs]

    def _allowed(self, poc: int, ref: int) -> bool:
        """A picture after the last CRA in output order never references one before it."""
        return ref >= 0 and not (self._cra >= 0 and poc > self._cra and ref < self._cra)

    def batch_size(self, next_index: int) -> int:
        """Frames to buffer before planning, the first being output index ``next_index``."""
        if self.gop != "ra" or next_index == 0:
            return 1
        return 16

    def plan(self, first: int, count: int) -> list[tuple[int, SliceInfo]]:
        """Coding order of output indices first .. first + count - 1 (count <= batch_size;
        fewer only at the end of the input), each with its slice header."""
        if self.gop != "ra" or first == 0:
            return [(first + k, self._slice(first + k)) for k in range(count)]
        order = [first - 1 + e.offset for e in _RA if e.offset <= count]
        return [(i, self._slice(i, later=order[k + 1:])) for k, i in enumerate(order)]

    def _slice(self, index: int, later: list[int] | None = None) -> SliceInfo:
        if self.gop != "ra" and self._is_intra(index):
            self._idr_index = index
            self._decoded = []
        poc = index - self._idr_index
        if poc == 0:
            self._decoded = [0]
            self._cra = -1
            return SliceInfo("I", 0, self._qp(None) if self.gop != "ai" else self.qp)
        if self.gop == "ra" and self._is_intra(index):
            self._cra = poc
            refs: tuple[int, ...] = ()
            sl_type, qp, nal = "I", self._qp(None), NAL_CRA
        else:
            e = self._entry(poc)
            refs = tuple(poc + d for d in self._deltas(poc)
                         if poc + d in self._decoded and self._allowed(poc, poc + d))
            sl_type = "B" if self.gop in ("ldb", "ra") else "P"
            qp = self._qp(e)
            nal = NAL_RASL_R if (self.gop == "ra" and 0 <= self._cra and poc < self._cra) else None
        # pictures that later ones (the rest of this batch, then as far ahead as the
        # structure's longest reference reaches) may reference, up to the next intra picture
        end = poc + 32 if self.gop == "ra" else poc + 16
        if self.intra_period and self.gop != "ra":
            end = min(end, self.intra_period - 1)
        wanted: set[int] = set()
        for q in list(later or []) + list(range(poc + 1, end + 1)):
            if q not in self._decoded and not (self.gop == "ra" and self._is_intra(q)):
                wanted.update(q + d for d in self._deltas(q) if self._allowed(q, q + d))
        keep = tuple(r for r in self._decoded if r in wanted and r not in refs)
        self._decoded = [r for r in self._decoded if r in refs or r in keep] + [poc]
        n = min(len(refs), self._entry(poc).active) if refs else 0
        return SliceInfo(sl_type, poc, qp, idr=False, refs=tuple(r - poc for r in refs),
                         keep=tuple(r - poc for r in keep), num_ref=(n, n if sl_type == "B" else 0), nal=nal)

    def _dry_run(self) -> tuple[int, int]:
        """(sps_max_dec_pic_buffering_minus1, sps_max_num_reorder_pics) of the structure."""
        if self.gop == "ai":
            return 0, 0
        n = max(3 * self.intra_period, 64) + 1
        coded: list[tuple[int, SliceInfo]] = []
        i = 0
        while i < n:
            k = min(self.batch_size(i), n - i)
            coded += self.plan(i, k)
            i += k
        size = reorder = 0
        for c, (idx, sl) in enumerate(coded):
            later = [j for j, _ in coded[c:]]
            waiting = {j for j, _ in coded[:c] if any(m < j for m in later)}
            rps = {idx + d for d in sl.refs + sl.keep}
            size = max(size, len(rps | waiting) + 1)
            reorder = max(reorder, sum(1 for j, _ in coded[:c] if j > idx))
        return size - 1, reorder
