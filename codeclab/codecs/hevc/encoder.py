"""All-intra HEVC picture encoder: picture state, compiled decisions, in-loop filters,
Annex-B output.

Two passes per picture. Pass 1 (:func:`codeclab.codecs.hevc.search.search_picture`, one
compiled call) decides and reconstructs every CU in z-order into a
:class:`~codeclab.codecs.hevc.picture_state.PictureState` with exactly the decoder's
arithmetic (quantizer, inverse transform and intra prediction), so our reconstruction is
the decoder's; the preset picks the strategy (``fast``: SATD decisions; ``medium`` /
``slow``: the RD search). Then the in-loop filters run on the whole picture (deblocking,
SAO estimation + application) and pass 2 writes the slice data from the state
(:func:`codeclab.codecs.hevc.ctu_syntax.write_slice_data`, SAO parameters first in each
CTU, as the syntax wants them). Python sees whole pictures only.

The access unit is VPS, SPS, PPS and the slice; with ``StreamParams.md5`` a suffix SEI
follows with the MD5 of the filtered picture at the coded size (:mod:`codeclab.codecs.hevc.sei`).

The quantizer is pluggable: any quantizer of the registry behind
:class:`~codeclab.codecs.hevc.quantizer.EncoderQuantizer`; the default is ``sq`` (HM's
dead-zone quantizer + sign-hiding pass). ``sq`` and ``rdoq`` run inside the compiled
search, any other is called back in Python (:mod:`codeclab.codecs.hevc.tb_coding`).
"""

from __future__ import annotations

import time

import numpy as np

from codeclab.base.errors import FormatError, UsageError
from codeclab.bitstream.cabac import CabacWriter, init_contexts, new_engine
from codeclab.bitstream.nal import annexb, nal_unit
from codeclab.codecs.hevc import loopfilter as lf
from codeclab.codecs.hevc import tb_coding
from codeclab.codecs.hevc.ctu_syntax import write_slice_data
from codeclab.codecs.hevc.lambdas import slice_lambdas
from codeclab.codecs.hevc.params import SLICE_NAL_TYPE, StreamParams, parameter_set_nals, slice_header_bits
from codeclab.codecs.hevc.picture_state import PictureState, new_picture_state
from codeclab.codecs.hevc.quantizer import EncoderQuantizer, RDOQQuantizer, SQQuantizer
from codeclab.codecs.hevc.scalar_quant import chroma_qp
from codeclab.codecs.hevc.search import PRESETS, SearchParams, search_picture
from codeclab.codecs.hevc.sei import md5_sei_nal
from codeclab.codecs.hevc.tables import INIT_VALUES_I

__all__ = ["PictureEncoder", "EncodedPicture"]


class EncodedPicture:
    def __init__(self, data: bytes, recon: list[np.ndarray], bits: int, stats: dict) -> None:
        self.data = data
        self.recon = recon
        self.bits = bits
        self.stats = stats


def _quant_kind(q: EncoderQuantizer) -> tuple[int, int]:
    """(tb_coding.QUANT_*, SQ rounding in 1/512): the registry's ``sq`` and ``rdoq`` (with
    the coder's own rate table) run compiled; anything else is called back."""
    inner = getattr(q, "q", None)
    if type(q) is EncoderQuantizer and type(inner) is SQQuantizer:
        return tb_coding.QUANT_SQ, int(round(inner.rounding * 512))
    if type(q) is EncoderQuantizer and type(inner) is RDOQQuantizer and inner.entropy_bits is None:
        return tb_coding.QUANT_RDOQ, 0
    return tb_coding.QUANT_EXTERNAL, 0


def tb_edges(st: PictureState, log2_ctb: int) -> tuple[np.ndarray, np.ndarray]:
    """Deblocking edge maps (vertical, horizontal; one flag per 4x4 luma unit) of the
    picture's luma TBs: a unit is on a TB's left / top side (loopfilter.mark_block_edges)."""
    cu_log2 = log2_ctb - np.repeat(np.repeat(st.cdepth, 2, axis=0), 2, axis=1)
    size = 1 << (cu_log2 - st.tdepth.astype(np.int32))  # TB size covering each unit
    h4, w4 = st.tdepth.shape
    xs = (np.arange(w4) * 4)[None, :]
    ys = (np.arange(h4) * 4)[:, None]
    return (xs % size) == 0, (ys % size) == 0


class PictureEncoder:
    """Encodes one 4:2:0 picture (planes of any integer dtype) into one access unit."""

    def __init__(self, params: StreamParams, quantizer: EncoderQuantizer | None = None,
                 preset: str = "medium") -> None:
        params.check()
        if preset not in PRESETS:
            raise UsageError(f"hevc: unknown preset {preset!r} (have {', '.join(PRESETS)})")
        self.p = params
        if quantizer is None:
            quantizer = EncoderQuantizer("sq", params.qp, rounding=1 / 3)
        self.q = quantizer
        self.bd = params.bit_depth
        self.lambdas = slice_lambdas(params.qp, self.bd)
        lam_satd = self.lambdas.satd
        pr = PRESETS[preset]
        self.preset = pr
        kind, add512 = _quant_kind(quantizer)
        qpc = chroma_qp(params.qp, 1, bit_depth_c=self.bd), chroma_qp(params.qp, 2, bit_depth_c=self.bd)
        self.tp = tb_coding.TbParams(
            bit_depth=self.bd, qp=(params.qp, qpc[0], qpc[1]), sign_hiding=bool(params.sign_hiding),
            ts_enabled=bool(params.transform_skip), lam=float(self.lambdas.rd), qkind=kind,
            sq_add512=add512, qlam=tuple(float(v) for v in slice_lambdas(params.qp, 8).quant),
            ctx0=init_contexts(INIT_VALUES_I, params.qp), ts_fast=pr.ts_fast)
        # SATD decisions: SATD of the prediction residual under-counts what a smaller block
        # costs to code (more TBs, last positions, cbfs): 6 x sqrt(lambda) per rough side
        # bit measured -11.6 % BD-rate (PSNR-Y) against 1 x on three 416x240 photographs,
        # QP 22-37 (benchmarks/bench_hevc_core.py --tune reproduces it).
        self.sp = SearchParams(
            log2_ctb=params.log2_ctb, max_tu_depth=params.max_tu_depth, log2_max_tb=params.log2_max_tb,
            lam=float(self.lambdas.rd), sqrt_lam=float(lam_satd), wc=float(self.lambdas.chroma_weight),
            lam_mode=6.0 * lam_satd, lam_split=6.0 * lam_satd, rd=pr.rd, n_rd=tuple(pr.n_rd),
            mpm=pr.mpm, tu_modes=pr.tu_modes, chroma_all=pr.chroma_all, early_cu=pr.early_cu,
            coarse=pr.coarse)
        self.param_nals = parameter_set_nals(params)

    # ----------------------------------------------------------------- picture -----------
    def search(self, planes: list[np.ndarray] | tuple[np.ndarray, ...]) -> tuple[PictureState, np.ndarray]:
        """Pass 1: decide and reconstruct every CU (before the in-loop filters); the state
        and the CABAC contexts the RD search carried to the end of the picture (those the
        slice writer ends with, when SAO is off: a search leaves no trace)."""
        p = self.p
        W, H = p.coded_width, p.coded_height
        if planes[0].shape != (p.height, p.width):
            raise FormatError(f"hevc: picture {planes[0].shape[::-1]} is not {p.width}x{p.height}")
        org = []
        for c, pl in enumerate(planes[:3]):
            sh = (H, W) if c == 0 else (H // 2, W // 2)
            a = np.asarray(pl, dtype=np.int32)
            org.append(np.pad(a, ((0, sh[0] - a.shape[0]), (0, sh[1] - a.shape[1])), mode="edge"))
        st = new_picture_state(org)
        ctx = init_contexts(INIT_VALUES_I, p.qp)
        tb_coding.EXTERNAL[:] = [self.q if self.tp.qkind == tb_coding.QUANT_EXTERNAL else None, None]
        try:
            search_picture(st, self.tp, self.sp, new_engine(1), ctx, np.zeros(16, dtype=np.uint8))
            failed = tb_coding.EXTERNAL[1]
        finally:
            tb_coding.EXTERNAL[:] = [None, None]
            if hasattr(self.q, "live_ctx"):
                self.q.live_ctx = None
        if failed is not None:
            raise failed
        return st, ctx

    def encode(self, planes: list[np.ndarray] | tuple[np.ndarray, ...]) -> EncodedPicture:
        t0 = time.perf_counter()
        p = self.p
        W, H = p.coded_width, p.coded_height
        st, _ = self.search(planes)
        t1 = time.perf_counter()
        out = [np.array(r) for r in st.rec]
        if p.deblock:
            qp_map = np.full((H // 4, W // 4), p.qp, dtype=np.int32)
            out = lf.deblock(out, tb_edges(st, p.log2_ctb), qp_map, self.bd)
        sao = None
        sao_l = sao_c = False
        if p.sao:
            sao = lf.sao_estimate(st.org, out, p.log2_ctb, self.bd, self.lambdas.rd)
            sao_l, sao_c = sao.slice_flags()
            if sao_l or sao_c:
                out = lf.sao_apply(out, sao, p.log2_ctb, self.bd)
        t2 = time.perf_counter()
        data = self._write(st, sao, sao_l, sao_c)
        if p.md5:  # suffix SEI after the slice: MD5 of what the decoder outputs (coded size)
            data += annexb([md5_sei_nal(out, self.bd)])
        t3 = time.perf_counter()
        recon = [out[0][: p.height, : p.width], out[1][: p.height // 2, : p.width // 2],
                 out[2][: p.height // 2, : p.width // 2]]
        cus = float(np.sum(4.0 ** -(p.log2_ctb - 3 - st.cdepth.astype(np.float64))))
        stats = {"decide_s": t1 - t0, "filter_s": t2 - t1, "write_s": t3 - t2, "cus": int(round(cus))}
        return EncodedPicture(data, recon, 8 * len(data), stats)

    def write_slice(self, st: PictureState, sao: lf.SaoParams | None = None, sao_l: bool = False,
                    sao_c: bool = False, estimate: bool = False) -> CabacWriter:
        """Pass 2: slice_segment_data() of a searched state, by a fresh CABAC writer (in
        estimate mode it only counts bits and ends with the contexts the syntax left)."""
        p = self.p
        ctb = 1 << p.log2_ctb
        if sao is None:
            sao = lf.SaoParams(-(-p.coded_height // ctb), -(-p.coded_width // ctb))
        cap = 16 if estimate else p.coded_width * p.coded_height * 4 + 4096
        while True:
            w = CabacWriter(INIT_VALUES_I, p.qp, capacity=cap, estimate=estimate)
            write_slice_data(w.eng, w.ctx, w.buf, st, p.log2_ctb, p.max_tu_depth, p.log2_max_tb,
                             bool(p.sign_hiding), bool(p.transform_skip), self.bd, sao_l, sao_c,
                             sao.type, sao.offsets, sao.band_position, sao.eo_class,
                             sao.merge_left, sao.merge_up)
            if estimate:
                return w
            try:
                w.getvalue()
                return w
            except OverflowError:
                cap *= 4

    def _write(self, st: PictureState, sao: lf.SaoParams | None, sao_l: bool, sao_c: bool) -> bytes:
        slice_nal = nal_unit(SLICE_NAL_TYPE, slice_header_bits(self.p, sao_l, sao_c)
                             + self.write_slice(st, sao, sao_l, sao_c).getvalue())
        return annexb(self.param_nals + [slice_nal])
