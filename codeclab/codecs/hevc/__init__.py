"""Our own HEVC (H.265) encoder: codec ``hevc`` of the registry (:data:`SPEC`).

Streams are Main / Main 10, 4:2:0. All-intra (``gop=ai``): every picture an IDR with its
parameter sets; low-delay P / B (``gop=ldp`` / ``ldb``): an IDR, then P (or generalised B)
pictures predicted from up to ``refs`` earlier pictures; random access (``gop=ra``):
hierarchical B pictures in GOPs of 16, coded out of order, CRA pictures every
``intra_period`` (HM's structures, :mod:`gop`). FFmpeg's decoder
(``FFmpegDecoder``) decodes them bit-exactly to our reconstruction. Kernels live
in small modules (scan, intra, transform, scalar_quant, rdoq, satd, loopfilter; the
quantizer interface in quantizer, the neural quantizers in nrdoq/), the syntax in
tables/params/residual/syntax (with residual_rules, the context and sign-hiding rules the
quantizers share), the lambdas in lambdas, the CTU loop in encoder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from codeclab.base.convert import convert_depth
from codeclab.base.errors import CodecError, FormatError, UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.base.packet import Packet
from codeclab.codecs.base import CodecSpec

__all__ = ["SPEC", "HevcOptions", "HevcEncoder"]


@dataclass(frozen=True)
class HevcOptions:
    """Options of codec ``hevc``.

    The defaults are HM's configurations (CTB 64, TU depth 2 intra / 2 inter - HM's
    QuadtreeTUMaxDepthIntra/Inter 3, which it signals minus one -, 4x4 transform skip,
    RDOQ, deblocking, SAO, sign hiding) at preset ``medium``, with the picture structure of
    HM's low-delay P configuration (``gop=ldp``), the structure a video encoder is expected
    to use: every picture after the first is predicted from earlier ones, and none is
    reordered, so each packet's presentation and decoding times agree (docs/hevc.md has the
    figures against HM for both structures). ``gop=ai`` gives all-intra streams (every
    picture an IDR, frame-parallel), as the all-intra test conditions need.

    qp: slice QP (-6*(bit_depth-8) .. 51); ctb: CTB size 16/32/64; max_tu_depth:
    max_transform_hierarchy_depth_intra; deblock / sao: in-loop filters; sign_hiding:
    sign data hiding; transform_skip: 4x4 transform skip; bit_depth: coded depth 8 or 10
    (None = the source's); rounding: dead-zone offset of the SQ quantizer (HM intra 171/512
    ~ 1/3); quant: quantizer name (quantizer.available_quantizers(): sq, rdoq ...); preset:
    decision effort (search.PRESETS): ``fast`` = SATD decisions, no RD search (the
    fastest); ``medium`` (default) = RD search with few candidates; ``slow`` = HM's
    candidate counts, TU split of the two best modes, all chroma modes (docs/hevc.md has
    the speed / BD-rate of each); keep_recon: put our reconstruction (coded depth, planes)
    on every packet as props["recon"]; md5: end every access unit with a decoded picture
    hash SEI (suffix SEI, MD5 of each component at the coded size, as HM writes it), which
    HM's decoder checks by itself (FFmpeg with err_detect=crccheck too); gop: picture
    structure, ``ai`` (all-intra, every picture coded on its own), ``ldp`` (HM's low-delay
    P: IDR then P pictures, GOP 4 with HM's QP offsets), ``ldb`` (the same with B slices
    whose two lists hold the same earlier pictures) or ``ra`` (HM's random access:
    hierarchical B, GOP 16, two references per list; packets come in decoding order with
    their ``dts``); refs: reference pictures of a low-delay picture (1..4, HM: 4);
    intra_period: an intra picture every that many pictures (IDR in ldp / ldb, CRA in ra,
    where it must be a multiple of 16; 0: only the first).
    """

    qp: int = 32
    ctb: int = 64
    max_tu_depth: int = 2
    deblock: bool = True
    sao: bool = True
    sign_hiding: bool = True
    transform_skip: bool = True
    bit_depth: int | None = None
    rounding: float = 1 / 3
    quant: str = "rdoq"
    preset: str = "medium"
    keep_recon: bool = False
    md5: bool = False
    gop: str = "ldp"
    refs: int = 4
    intra_period: int = 0

    def __post_init__(self) -> None:
        if self.ctb not in (16, 32, 64):
            raise UsageError(f"hevc: ctb {self.ctb} not in 16, 32, 64")
        if self.bit_depth not in (None, 8, 10):
            raise UsageError(f"hevc: bit_depth {self.bit_depth} not 8 or 10 (Main / Main 10)")
        from codeclab.codecs.hevc.scalar_quant import check_qp

        check_qp(self.qp, self.bit_depth)  # None (the source's): StreamParams.check knows it
        if not 0 <= self.max_tu_depth <= 4:
            raise UsageError(f"hevc: max_tu_depth {self.max_tu_depth} outside 0..4")
        if not 0.0 <= self.rounding < 1.0:
            raise UsageError(f"hevc: rounding {self.rounding} outside [0, 1)")
        from codeclab.codecs.hevc.quantizer import available_quantizers
        from codeclab.codecs.hevc.search import PRESETS

        if self.preset not in PRESETS:
            raise UsageError(f"hevc: unknown preset {self.preset!r} (have {', '.join(PRESETS)})")

        from codeclab.codecs.hevc.gop import GOPS

        if self.gop not in GOPS:
            raise UsageError(f"hevc: unknown gop {self.gop!r} (have {', '.join(GOPS)})")
        if not 1 <= self.refs <= 4:
            raise UsageError(f"hevc: refs {self.refs} outside 1..4")
        if self.intra_period < 0:
            raise UsageError(f"hevc: intra_period {self.intra_period} is negative")
        if self.gop == "ra" and self.intra_period % 16:
            raise UsageError(f"hevc: gop ra needs an intra_period that is a multiple of 16, not {self.intra_period}")
        if self.quant not in available_quantizers():
            raise UsageError(f"hevc: unknown quantizer {self.quant!r} (have {', '.join(available_quantizers())})")


class HevcEncoder:
    """Frame -> one Annex-B access unit per packet (IRAP pictures: VPS, SPS, PPS and the
    slice; others: the slice; each with its MD5 SEI when asked), in decoding order: input
    order except with ``gop=ra``, which buffers a GOP of 16 frames and emits its packets in
    coding order (``pts`` the frame's, ``dts`` increasing).

    quantizer: an encoder-side quantizer object (quantizer.EncoderQuantizer or a wrapper of
    one, e.g. the training-data recorder of lab/nrdoq_data.py) used instead of building
    ``opts.quant``'s."""

    def __init__(self, fmt: VideoFormat, opts: HevcOptions, quantizer: Any = None) -> None:
        from fractions import Fraction

        from codeclab.codecs.hevc.encoder import PictureEncoder
        from codeclab.codecs.hevc.gop import GopPlanner
        from codeclab.codecs.hevc.params import StreamParams

        if fmt.chroma != "420":
            raise FormatError(f"hevc: only 4:2:0 is supported, not {fmt.chroma} (convert with --to-pix-fmt)")
        depth = opts.bit_depth or fmt.bit_depth
        if depth not in (8, 10):
            raise FormatError(f"hevc: codes 8- or 10-bit video, not {depth}-bit (set bit_depth)")
        if fmt.width % 2 or fmt.height % 2:
            raise FormatError(f"hevc: 4:2:0 size {fmt.width}x{fmt.height} must be even")
        self.fmt, self.opts, self.depth = fmt, opts, depth
        self._gop = GopPlanner(opts.gop, opts.qp, opts.refs, opts.intra_period, depth)
        params = StreamParams(fmt.width, fmt.height, depth, opts.ctb.bit_length() - 1,
                              opts.max_tu_depth, opts.qp, Fraction(fmt.fps), opts.sign_hiding,
                              opts.transform_skip, opts.deblock, opts.sao, opts.md5,
                              max_refs=self._gop.max_refs, max_reorder=self._gop.max_reorder)
        from codeclab.codecs.hevc.quantizer import EncoderQuantizer

        if quantizer is None:
            qopts = {"rounding": opts.rounding} if opts.quant == "sq" else {}
            quantizer = EncoderQuantizer(opts.quant, opts.qp, **qopts)
        self._pic = PictureEncoder(params, quantizer, opts.preset)
        self._flushed = False
        self._count = 0                 # frames received and planned
        self._decoded = 0               # packets emitted
        self._pending: list[Frame] = []  # frames waiting for the rest of their GOP
        # presentation times of the frames received, from output index _pts_base on (older
        # ones are dropped once no packet can need them: memory stays bounded on long inputs)
        self._pts_in: list[int] = []
        self._pts_base = 0
        self._pts_first: int | None = None
        self._dpb: dict = {}  # POC -> encoder.DecodedPicture of the current coded video sequence

    def encode(self, frame: Frame) -> list[Packet]:
        if self._flushed:
            raise CodecError("hevc: encode after flush")
        if frame.format.width != self.fmt.width or frame.format.height != self.fmt.height:
            raise FormatError(f"hevc: frame {frame.index} is {frame.format.width}x{frame.format.height}, "
                              f"stream is {self.fmt.width}x{self.fmt.height}")
        self._pending.append(frame)
        self._pts_in.append(frame.pts if frame.pts is not None else frame.index)
        if self._pts_first is None:
            self._pts_first = self._pts_in[0]
        if len(self._pending) < self._gop.batch_size(self._count):
            return []
        return self._code_pending()

    def flush(self) -> list[Packet]:
        """Code the frames still buffered (random access: the last, shorter GOP)."""
        out = self._code_pending() if self._pending else []
        self._flushed = True
        return out

    def _code_pending(self) -> list[Packet]:
        """Code the buffered frames in the structure's coding order; one packet each, in
        decoding order, with its presentation (``pts``) and decoding (``dts``) times."""
        frames, self._pending = self._pending, []
        first = self._count
        self._count += len(frames)
        out = []
        for index, sl in self._gop.plan(first, len(frames)):
            frame = frames[index - first]
            t0, c0 = time.perf_counter(), time.thread_time()
            planes = convert_depth(frame.planes, frame.format.bit_depth, self.depth)
            if sl.idr:
                self._dpb.clear()
            else:  # the RPS: keep what this and later pictures reference
                wanted = {sl.poc + d for d in sl.refs + sl.keep}
                self._dpb = {k: v for k, v in self._dpb.items() if k in wanted}
            pic = self._pic.encode(list(planes), sl, self._dpb)
            if pic.decoded is not None:
                self._dpb[sl.poc] = pic.decoded
            # encoder_cpu_s: this thread's CPU seconds, what HM's "Total Time" counts for its process
            props: dict[str, Any] = {"bits": pic.bits, "encode_s": time.perf_counter() - t0,
                                     "encoder_cpu_s": time.thread_time() - c0, **pic.stats}
            props["qp"] = float(sl.qp)
            if self.opts.keep_recon:
                dt = np.uint8 if self.depth == 8 else np.uint16
                props["recon"] = tuple(r.astype(dt) for r in pic.recon)
            pts = self._pts_in[index - self._pts_base]
            # decoding time of the k-th packet: the k-th presentation time, delayed by the
            # reordering depth R (the first R packets before the first presentation time),
            # so no picture is decoded after it is presented
            k, r = self._decoded, self._gop.max_reorder
            dts = self._pts_in[k - r - self._pts_base] if k >= r else self._pts_first - (r - k)
            self._decoded += 1
            out.append(Packet(pic.data, frame.index, pts, sl.irap, props, dts=dts))
        # every later packet is a later frame's, and its dts index (k - r) only grows
        drop = min(self._count, max(self._decoded - self._gop.max_reorder, 0)) - self._pts_base
        if drop > 0:
            del self._pts_in[:drop]
            self._pts_base += drop
        return out


def _decoder(fmt: VideoFormat, _opts: HevcOptions) -> Any:
    from codeclab.codecs.ffmpeg import FFmpegDecoder

    return FFmpegDecoder("hevc", fmt)


def _frame_parallel(opts: HevcOptions) -> bool:
    """All-intra: every access unit is coded on its own and carries its parameter sets."""
    return opts.gop == "ai"


#: codec ``hevc`` of the registry
SPEC = CodecSpec("hevc", "our own HEVC encoder (all-intra, low-delay P/B or random access; RD search, presets fast/medium/slow, "
                 "pluggable quantizer sq/rdoq), decoded by FFmpeg", HevcOptions, HevcEncoder, _decoder, "hevc",
                 ".hevc", frame_parallel=_frame_parallel)
