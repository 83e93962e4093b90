"""HEVC picture encoder (I and P pictures): picture state, compiled decisions, in-loop
filters, Annex-B output.

Two passes per picture. Pass 1 (:func:`codeclab.codecs.hevc.search.search_picture`, one
compiled call) decides and reconstructs every CU in z-order into a
:class:`~codeclab.codecs.hevc.picture_state.PictureState` with exactly the decoder's
arithmetic (quantizer, inverse transform and intra prediction), so our reconstruction is
the decoder's; the preset picks the strategy (``fast``: SATD decisions; ``medium`` /
``slow``: the RD search). Then the in-loop filters run on the whole picture (deblocking,
SAO estimation + application) and pass 2 writes the slice data from the state
(:func:`codeclab.codecs.hevc.ctu_syntax.write_slice_data`, SAO parameters first in each
CTU, as the syntax wants them). Python sees whole pictures only.

The access unit of an IDR picture is VPS, SPS, PPS and the slice, that of a P picture its
slice alone; with ``StreamParams.md5`` a suffix SEI follows with the MD5 of the filtered
picture at the coded size (:mod:`codeclab.codecs.hevc.sei`). A P picture is coded against
the :class:`DecodedPicture` s its :class:`~codeclab.codecs.hevc.params.SliceInfo` names
(the caller's decoded picture buffer); each encode returns its own for the buffer.

The quantizer is pluggable: any quantizer of the registry behind
:class:`~codeclab.codecs.hevc.quantizer.EncoderQuantizer`; the default is ``sq`` (HM's
dead-zone quantizer + sign-hiding pass). ``sq`` and ``rdoq`` run inside the compiled
search, any other is called back in Python (:mod:`codeclab.codecs.hevc.tb_coding`).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from codeclab.base.errors import FormatError, UsageError
from codeclab.bitstream.cabac import CabacWriter, init_contexts, new_engine
from codeclab.bitstream.nal import annexb, nal_unit
from codeclab.codecs.hevc import loopfilter as lf
from codeclab.codecs.hevc import tb_coding
from codeclab.codecs.hevc.ctu_syntax import write_slice_data
from codeclab.codecs.hevc.inter import InterRefs
from codeclab.codecs.hevc.lambdas import SliceLambdas, slice_lambdas
from codeclab.codecs.hevc.params import (
    MAX_MERGE_CAND,
    SliceInfo,
    StreamParams,
    parameter_set_nals,
    slice_header_bits,
)
from codeclab.codecs.hevc.picture_state import (
    ICU_PART,
    ICU_SKIP,
    MOT_MV,
    MOT_PF,
    MOT_RI,
    PictureState,
    blank_motion,
    new_picture_state,
)
from codeclab.codecs.hevc.nrdoq.neural_quantizer import NRDOQQuantizer
from codeclab.codecs.hevc.quantizer import EncoderQuantizer, RDOQQuantizer, SQQuantizer
from codeclab.codecs.hevc.scalar_quant import chroma_qp
from codeclab.codecs.hevc.search import PRESETS, SearchParams, search_picture
from codeclab.codecs.hevc.sei import md5_sei_nal
from codeclab.codecs.hevc.tables import INIT_VALUES_B, INIT_VALUES_I, INIT_VALUES_P

__all__ = ["PictureEncoder", "EncodedPicture", "DecodedPicture"]

_INIT_VALUES = {"I": INIT_VALUES_I, "P": INIT_VALUES_P, "B": INIT_VALUES_B}  # initType 0, 1, 2


class DecodedPicture(NamedTuple):
    """A coded picture as later pictures see it: the filtered samples at the coded size and
    its motion field (per 4x4 luma unit: prediction flags, the motion vectors of both lists,
    the POC of the picture each list refers to) for temporal motion vector prediction."""

    poc: int
    planes: tuple[np.ndarray, np.ndarray, np.ndarray]  # int32, coded size
    pf: np.ndarray       # uint8 (H/4, W/4)
    mv: np.ndarray       # int32 (H/4, W/4, 4)
    rpoc: np.ndarray     # int64 (H/4, W/4, 2)


class EncodedPicture:
    def __init__(self, data: bytes, recon: list[np.ndarray], bits: int, stats: dict,
                 decoded: DecodedPicture | None = None) -> None:
        self.data = data
        self.recon = recon
        self.bits = bits
        self.stats = stats
        self.decoded = decoded


class _PictureSetup(NamedTuple):
    """Everything that depends on a picture's QP and slice type."""

    tp: tb_coding.TbParams
    sp: SearchParams
    lambdas: SliceLambdas
    init_values: np.ndarray


def _no_refs(H: int, W: int) -> InterRefs:
    """The reference side of an I picture (never read; typed as a P picture's)."""
    return InterRefs(0, np.zeros((0, 1, 1), dtype=np.int32), np.zeros((0, 2, 1, 1), dtype=np.int32),
                     np.zeros((2, 16), dtype=np.int64), np.zeros((2, 16), dtype=np.int64),
                     np.zeros(2, dtype=np.int64), MAX_MERGE_CAND, False, 0,
                     np.zeros((1, 1), dtype=np.uint8), np.zeros((1, 1, 4), dtype=np.int32),
                     np.zeros((1, 1, 2), dtype=np.int64), False, True)


def _quant_kind(q: EncoderQuantizer) -> tuple[int, int, tb_coding.NetParams]:
    """(tb_coding.QUANT_*, SQ rounding in 1/512, network weights): the registry's ``sq``,
    ``rdoq`` (with the coder's own rate table) and the neural RDOQ networks run compiled;
    anything else is called back."""
    inner = getattr(q, "q", None)
    if type(q) is EncoderQuantizer and type(inner) is SQQuantizer:
        return tb_coding.QUANT_SQ, int(round(inner.rounding * 512)), tb_coding.NO_NET
    if type(q) is EncoderQuantizer and type(inner) is RDOQQuantizer and inner.entropy_bits is None:
        return tb_coding.QUANT_RDOQ, 0, tb_coding.NO_NET
    if type(q) is EncoderQuantizer and type(inner) is NRDOQQuantizer:
        w = inner.kernel_weights()
        if inner.kind == "ar":
            return tb_coding.QUANT_AR, 0, tb_coding.NetParams(w, tb_coding.NO_NET.fcn)
        return tb_coding.QUANT_FCN, 0, tb_coding.NetParams(tb_coding.NO_NET.ar, w)
    return tb_coding.QUANT_EXTERNAL, 0, tb_coding.NO_NET


def tb_edges(st: PictureState, log2_ctb: int) -> tuple[np.ndarray, np.ndarray]:
    """Deblocking edge maps (vertical, horizontal; one flag per 4x4 luma unit) of the
    picture's luma TBs: a unit is on a TB's left / top side (loopfilter.mark_block_edges)."""
    cu_log2 = log2_ctb - np.repeat(np.repeat(st.cdepth, 2, axis=0), 2, axis=1)
    size = 1 << (cu_log2 - st.tdepth.astype(np.int32))  # TB size covering each unit
    h4, w4 = st.tdepth.shape
    xs = (np.arange(w4) * 4)[None, :]
    ys = (np.arange(h4) * 4)[:, None]
    return (xs % size) == 0, (ys % size) == 0


def pu_edges(st: PictureState, log2_ctb: int) -> tuple[np.ndarray, np.ndarray]:
    """Edge maps of the prediction block boundaries inside 2NxN / Nx2N inter CUs."""
    cu_log2 = log2_ctb - np.repeat(np.repeat(st.cdepth, 2, axis=0), 2, axis=1)
    half = 1 << (cu_log2 - 1)
    part = np.repeat(np.repeat(st.icu[..., ICU_PART], 2, axis=0), 2, axis=1)
    inter = st.mot[..., MOT_PF] != 0
    h4, w4 = inter.shape
    xs = (np.arange(w4) * 4)[None, :]
    ys = (np.arange(h4) * 4)[:, None]
    return (inter & (part == 2) & ((xs % (2 * half)) == half),
            inter & (part == 1) & ((ys % (2 * half)) == half))


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
        self.preset = PRESETS[preset]
        self._kind = _quant_kind(quantizer)
        self._setups: dict[tuple[int, str, int, int], _PictureSetup] = {}
        self.lambdas = self._setup(params.qp, "I").lambdas
        self.param_nals = parameter_set_nals(params)

    @property
    def tp(self) -> tb_coding.TbParams:
        """TB parameters of an I picture at the stream QP (settable, for experiments)."""
        return self._setup(self.p.qp, "I").tp

    @tp.setter
    def tp(self, v: tb_coding.TbParams) -> None:
        key = (self.p.qp, "I", 0, 0)
        self._setups[key] = self._setup(self.p.qp, "I")._replace(tp=v)

    @property
    def sp(self) -> SearchParams:
        """Search parameters of an I picture at the stream QP (settable, for experiments)."""
        return self._setup(self.p.qp, "I").sp

    @sp.setter
    def sp(self, v: SearchParams) -> None:
        key = (self.p.qp, "I", 0, 0)
        self._setups[key] = self._setup(self.p.qp, "I")._replace(sp=v)

    def _setup(self, qp: int, slice_type: str, nref: int = 0, nref1: int = 0) -> _PictureSetup:
        """TB and search parameters of a picture at QP ``qp`` (cached per QP, slice type and
        numbers of active references)."""
        key = (qp, slice_type, nref, nref1)
        if key in self._setups:
            return self._setups[key]
        slice_p = slice_type != "I"
        p, pr = self.p, self.preset
        lambdas = slice_lambdas(qp, self.bd)
        lam_satd = lambdas.satd
        kind, add512, net = self._kind
        if slice_p:  # HM's dead-zone offset halves in P and B slices (85 / 171 of 512)
            add512 //= 2
        qpc = chroma_qp(qp, 1, bit_depth_c=self.bd), chroma_qp(qp, 2, bit_depth_c=self.bd)
        init_values = _INIT_VALUES[slice_type]
        tp = tb_coding.TbParams(
            bit_depth=self.bd, qp=(qp, qpc[0], qpc[1]), sign_hiding=bool(p.sign_hiding),
            ts_enabled=bool(p.transform_skip), lam=float(lambdas.rd), qkind=kind,
            sq_add512=add512, qlam=tuple(float(v) for v in slice_lambdas(qp, 8).quant),
            ctx0=init_contexts(init_values, qp), ts_fast=pr.ts_fast, ts_try=pr.ts_try, net=net)
        # SATD decisions: SATD of the prediction residual under-counts what a smaller block
        # costs to code (more TBs, last positions, cbfs): 6 x sqrt(lambda) per rough side
        # bit measured -11.6 % BD-rate (PSNR-Y) against 1 x on three 416x240 photographs,
        # QP 22-37 (benchmarks/bench_hevc_core.py --tune reproduces it).
        sp = SearchParams(
            log2_ctb=p.log2_ctb, max_tu_depth=p.max_tu_depth, log2_max_tb=p.log2_max_tb,
            lam=float(lambdas.rd), sqrt_lam=float(lam_satd), wc=float(lambdas.chroma_weight),
            lam_mode=pr.mode_w * lam_satd, lam_split=pr.split_w * lam_satd, rd=pr.rd, n_rd=tuple(pr.n_rd),
            mpm=pr.mpm, tu_modes=pr.tu_modes, chroma_all=pr.chroma_all, early_cu=pr.early_cu,
            coarse=pr.coarse, inter=slice_p, nref=nref, nref1=nref1, max_merge=MAX_MERGE_CAND,
            merge_rd=pr.merge_rd, search_range=pr.search_range, intra_p=pr.intra_p,
            tu_inter=pr.tu_inter, max_tu_depth_inter=p.max_tu_depth_inter, rect=pr.rect,
            rect_all_refs=pr.rect_all_refs, bi_iters=pr.bi_iters)
        self._setups[key] = _PictureSetup(tp, sp, lambdas, init_values)
        return self._setups[key]

    def _refs(self, sl: SliceInfo, dpb: dict[int, DecodedPicture]) -> InterRefs:
        """The reference lists of P / B picture ``sl`` from the decoded picture buffer (POC ->
        picture); the collocated picture is RefPicList1[0] in B slices, RefPicList0[0] in P
        slices (the slice header says so)."""
        pocs = sorted({sl.poc + d for d in sl.refs})
        try:
            pics = [dpb[q] for q in pocs]
        except KeyError as e:
            raise UsageError(f"hevc: picture {sl.poc} needs picture {e.args[0]}, not in the buffer") from None
        pic = np.zeros((2, 16), dtype=np.int64)
        ref_poc = np.zeros((2, 16), dtype=np.int64)
        for lx in range(2):
            for i, d in enumerate(sl.ref_list(lx)):
                pic[lx, i], ref_poc[lx, i] = pocs.index(sl.poc + d), sl.poc + d
        b = sl.slice_type == "B"
        col = pics[pic[1, 0] if b else pic[0, 0]]
        return InterRefs(
            sl.poc, np.stack([q.planes[0] for q in pics]), np.stack([np.stack(q.planes[1:]) for q in pics]),
            pic, ref_poc, np.array([sl.num_active(0), sl.num_active(1)], dtype=np.int64), MAX_MERGE_CAND,
            bool(self.p.tmvp), col.poc, col.pf, col.mv, col.rpoc, not b, all(d < 0 for d in sl.refs))

    # ----------------------------------------------------------------- picture -----------
    def search(self, planes: list[np.ndarray] | tuple[np.ndarray, ...], sl: SliceInfo | None = None,
               dpb: dict[int, DecodedPicture] | None = None) -> tuple[PictureState, np.ndarray]:
        """Pass 1: decide and reconstruct every CU (before the in-loop filters); the state
        and the CABAC contexts the RD search carried to the end of the picture (those the
        slice writer ends with, when SAO is off: a search leaves no trace). ``sl`` / ``dpb``:
        the picture's slice header and the decoded picture buffer (None: an IDR picture at
        the stream QP)."""
        p = self.p
        sl = sl or SliceInfo("I", 0, p.qp)
        slice_p = sl.slice_type != "I"
        su = self._setup(sl.qp, sl.slice_type, sl.num_active(0), sl.num_active(1))
        W, H = p.coded_width, p.coded_height
        if planes[0].shape != (p.height, p.width):
            raise FormatError(f"hevc: picture {planes[0].shape[::-1]} is not {p.width}x{p.height}")
        org = []
        for c, pl in enumerate(planes[:3]):
            sh = (H, W) if c == 0 else (H // 2, W // 2)
            a = np.asarray(pl, dtype=np.int32)
            org.append(np.pad(a, ((0, sh[0] - a.shape[0]), (0, sh[1] - a.shape[1])), mode="edge"))
        st = new_picture_state(org, inter=slice_p)
        ctx = init_contexts(su.init_values, sl.qp)
        refs = self._refs(sl, dpb or {}) if slice_p else _no_refs(H, W)
        if hasattr(self.q, "begin_picture"):
            self.q.begin_picture(sl)
        tb_coding.EXTERNAL[:] = [self.q if su.tp.qkind == tb_coding.QUANT_EXTERNAL else None, None]
        try:
            search_picture(st, su.tp, su.sp, refs, new_engine(1), ctx, np.zeros(16, dtype=np.uint8))
            failed = tb_coding.EXTERNAL[1]
        finally:
            tb_coding.EXTERNAL[:] = [None, None]
            if hasattr(self.q, "live_ctx"):
                self.q.live_ctx = None
        if failed is not None:
            raise failed
        return st, ctx

    def encode(self, planes: list[np.ndarray] | tuple[np.ndarray, ...], sl: SliceInfo | None = None,
               dpb: dict[int, DecodedPicture] | None = None) -> EncodedPicture:
        """One access unit: the picture ``sl`` (None: an IDR at the stream QP) predicted from
        the pictures of ``dpb`` its slice header names."""
        t0 = time.perf_counter()
        p = self.p
        sl = sl or SliceInfo("I", 0, p.qp)
        slice_p = sl.slice_type != "I"
        su = self._setup(sl.qp, sl.slice_type, sl.num_active(0), sl.num_active(1))
        W, H = p.coded_width, p.coded_height
        st, _ = self.search(planes, sl, dpb)
        t1 = time.perf_counter()
        out = [np.array(r) for r in st.rec]
        mot = st.mot if slice_p else blank_motion(H // 4, W // 4)  # I: all intra
        pf = mot[..., MOT_PF].astype(np.uint8)
        mv = np.ascontiguousarray(mot[..., MOT_MV:MOT_MV + 4])
        rpoc = np.full((H // 4, W // 4, 2), -1, dtype=np.int64)
        for lx in range(2):
            ref_poc = np.array([sl.poc + d for d in sl.ref_list(lx)] or [-1], dtype=np.int64)
            ri = mot[..., MOT_RI + lx]
            used = ri >= 0
            rpoc[..., lx][used] = ref_poc[ri[used]]
        if p.deblock:
            qp_map = np.full((H // 4, W // 4), sl.qp, dtype=np.int32)
            edges = tb_edges(st, p.log2_ctb)
            if slice_p:
                pu = pu_edges(st, p.log2_ctb)
                edges = lf.boundary_strengths((edges[0] | pu[0], edges[1] | pu[1]), pf, mv, rpoc,
                                              st.cbf[0], edges)
            out = lf.deblock(out, edges, qp_map, self.bd)
        sao = None
        sao_l = sao_c = False
        if p.sao:
            sao = lf.sao_estimate(st.org, out, p.log2_ctb, self.bd, su.lambdas.rd)
            sao_l, sao_c = sao.slice_flags()
            if sao_l or sao_c:
                out = lf.sao_apply(out, sao, p.log2_ctb, self.bd)
        t2 = time.perf_counter()
        data = self._write(st, sao, sao_l, sao_c, sl)
        if p.md5:  # suffix SEI after the slice: MD5 of what the decoder outputs (coded size)
            data += annexb([md5_sei_nal(out, self.bd)])
        t3 = time.perf_counter()
        recon = [out[0][: p.height, : p.width], out[1][: p.height // 2, : p.width // 2],
                 out[2][: p.height // 2, : p.width // 2]]
        cus = float(np.sum(4.0 ** -(p.log2_ctb - 3 - st.cdepth.astype(np.float64))))
        stats = {"decide_s": t1 - t0, "filter_s": t2 - t1, "write_s": t3 - t2, "cus": int(round(cus)),
                 "qp": sl.qp, "pict_type": sl.slice_type, "poc": sl.poc}
        if slice_p:
            n4 = pf.size
            stats["skip_share"] = float(np.repeat(np.repeat(st.icu[..., ICU_SKIP], 2, 0), 2, 1).sum()) / n4
            stats["intra_share"] = float((pf == 0).sum()) / n4
        decoded = None
        if p.max_refs:
            decoded = DecodedPicture(sl.poc, (out[0], out[1], out[2]), pf, mv, rpoc)
        return EncodedPicture(data, recon, 8 * len(data), stats, decoded)

    def write_slice(self, st: PictureState, sao: lf.SaoParams | None = None, sao_l: bool = False,
                    sao_c: bool = False, estimate: bool = False, sl: SliceInfo | None = None) -> CabacWriter:
        """Pass 2: slice_segment_data() of a searched state, by a fresh CABAC writer (in
        estimate mode it only counts bits and ends with the contexts the syntax left)."""
        p = self.p
        sl = sl or SliceInfo("I", 0, p.qp)
        slice_p = sl.slice_type != "I"
        ctb = 1 << p.log2_ctb
        if sao is None:
            sao = lf.SaoParams(-(-p.coded_height // ctb), -(-p.coded_width // ctb))
        cap = 16 if estimate else p.coded_width * p.coded_height * 4 + 4096
        while True:
            w = CabacWriter(_INIT_VALUES[sl.slice_type], sl.qp, capacity=cap,
                            estimate=estimate)
            write_slice_data(w.eng, w.ctx, w.buf, st, p.log2_ctb, p.max_tu_depth, p.log2_max_tb,
                             bool(p.sign_hiding), bool(p.transform_skip), self.bd, sao_l, sao_c,
                             sao.type, sao.offsets, sao.band_position, sao.eo_class,
                             sao.merge_left, sao.merge_up, slice_p, sl.num_active(0), sl.num_active(1), MAX_MERGE_CAND,
                             p.max_tu_depth_inter)
            if estimate:
                return w
            try:
                w.getvalue()
                return w
            except OverflowError:
                cap *= 4

    def _write(self, st: PictureState, sao: lf.SaoParams | None, sao_l: bool, sao_c: bool,
               sl: SliceInfo) -> bytes:
        slice_nal = nal_unit(sl.nal_type, slice_header_bits(self.p, sao_l, sao_c, sl)
                             + self.write_slice(st, sao, sao_l, sao_c, sl=sl).getvalue())
        return annexb((self.param_nals if sl.irap else []) + [slice_nal])
