"""All-intra HEVC picture encoder: CTU loop, decisions, reconstruction, Annex-B output.

Two passes per picture. Pass 1 decides and reconstructs every CU in z-order (quantizer,
inverse transform and intra prediction use exactly the decoder's arithmetic, so our
reconstruction is the decoder's), recording the decisions as syntax records. Then the
in-loop filters run on the whole picture (deblocking, SAO estimation + application) and
pass 2 writes the slice data from the records (SAO parameters first in each CTU, as the
syntax wants them).

Decisions: preset ``fast`` (``_decide``, no RD search): Hadamard SATD of the prediction
residual plus lam_mode * rough mode bits chooses the luma mode among all 35 (predicted
from our reconstruction); 2Nx2N vs NxN at 8x8, the CU split (64 down to 8) and the TU
split compare the parent with its four parts, both predicted from source neighbours, plus
lam_split * rough side bits; chroma picks the best SATD of the five
intra_chroma_pred_mode candidates. Presets ``medium`` / ``slow``: the RD search of
:mod:`codeclab.codecs.hevc.rdsearch` decides instead, through save_region /
restore_region and the syntax writers in estimate mode, calling this module's TB coding.
Every preset: 4x4 transform skip is chosen by SSE + lambda * CABAC-estimated bits.

The access unit is VPS, SPS, PPS and the slice; with ``StreamParams.md5`` a suffix SEI
follows with the MD5 of the filtered picture at the coded size (:mod:`codeclab.codecs.hevc.sei`).

The quantizer is pluggable: any quantizer of the registry behind
:class:`~codeclab.codecs.hevc.quantizer.EncoderQuantizer`; the default is ``sq`` (HM's
dead-zone quantizer + sign-hiding pass).
"""

from __future__ import annotations

import time

import numpy as np

from codeclab.base.errors import FormatError, UsageError
from codeclab.bitstream.cabac import E_FRAC, FRAC_ONE, CabacWriter, init_contexts, new_engine
from codeclab.bitstream.nal import annexb, nal_unit
from codeclab.codecs.hevc import loopfilter as lf
from codeclab.codecs.hevc.intra import chroma_mode_from, predict_all_modes, predict_intra
from codeclab.codecs.hevc.lambdas import slice_lambdas
from codeclab.codecs.hevc.params import SLICE_NAL_TYPE, StreamParams, parameter_set_nals, slice_header_bits
from codeclab.codecs.hevc.quantizer import EncoderQuantizer
from codeclab.codecs.hevc.residual import C4_SCAN, SB_SCAN, code_residual
from codeclab.codecs.hevc.satd import satd, satd_batch
from codeclab.codecs.hevc.scalar_quant import QUANT_SCALES, chroma_qp, dequantize, quant_shift
from codeclab.codecs.hevc.scan import scan_idx_for
from codeclab.codecs.hevc.sei import md5_sei_nal
from codeclab.codecs.hevc.syntax import (
    CodingUnit,
    PictureMaps,
    TransformNode,
    mode_bits,
    mpm_candidates,
    write_ctu,
    write_end_of_slice,
    write_sao,
)
from codeclab.codecs.hevc.tables import INIT_VALUES_I
from codeclab.codecs.hevc.transform import (
    forward_transform,
    forward_transform_skip,
    inverse_transform,
    inverse_transform_skip,
)

__all__ = ["PictureEncoder", "EncodedPicture"]


class EncodedPicture:
    def __init__(self, data: bytes, recon: list[np.ndarray], bits: int, stats: dict) -> None:
        self.data = data
        self.recon = recon
        self.bits = bits
        self.stats = stats


class PictureEncoder:
    """Encodes one 4:2:0 picture (planes of any integer dtype) into one access unit."""

    def __init__(self, params: StreamParams, quantizer: EncoderQuantizer | None = None,
                 preset: str = "medium") -> None:
        from codeclab.codecs.hevc.rdsearch import PRESETS, RdSearch

        params.check()
        if preset not in PRESETS:
            raise UsageError(f"hevc: unknown preset {preset!r} (have {', '.join(PRESETS)})")
        self.p = params
        if quantizer is None:
            quantizer = EncoderQuantizer("sq", params.qp, rounding=1 / 3)
        self.q = quantizer
        self.bd = params.bit_depth
        self.lambdas = slice_lambdas(params.qp, self.bd)
        self.lam = self.lambdas.rd         # SSE in the samples' bit depth + lam * bits
        self.lam_satd = self.lambdas.satd
        # SATD of the prediction residual under-counts what a smaller block costs to code
        # (more TBs, last positions, cbfs): 6 x sqrt(lambda) per rough side bit measured
        # -11.6 % BD-rate (PSNR-Y) against 1 x on three 416x240 photographs, QP 22-37
        # (benchmarks/bench_hevc_core.py --tune reproduces it).
        self.lam_mode = 6.0 * self.lam_satd   # mode choice: SATD + lam_mode * mode bits
        self.lam_split = 6.0 * self.lam_satd  # partitions: SATD + lam_split * side bits
        self.qpc = [params.qp, chroma_qp(params.qp, 1, bit_depth_c=self.bd),
                    chroma_qp(params.qp, 2, bit_depth_c=self.bd)]
        self.maxv = (1 << self.bd) - 1
        self._ctx0 = init_contexts(INIT_VALUES_I, params.qp)
        self._est_eng = new_engine(1)
        self._est_buf = np.zeros(16, dtype=np.uint8)
        self.param_nals = parameter_set_nals(params)
        self.preset = PRESETS[preset]
        self.rd = RdSearch(self, self.preset) if self.preset.rd else None
        # the quantizer is told the trafoDepth (its cbf context) when it can take it
        self._q_depth = hasattr(self.q, "live_ctx")

    # ----------------------------------------------------------------- picture -----------
    def encode(self, planes: list[np.ndarray] | tuple[np.ndarray, ...]) -> EncodedPicture:
        t0 = time.perf_counter()
        p = self.p
        W, H = p.coded_width, p.coded_height
        if planes[0].shape != (p.height, p.width):
            raise FormatError(f"hevc: picture {planes[0].shape[::-1]} is not {p.width}x{p.height}")
        self.org = []
        for c, pl in enumerate(planes[:3]):
            sh = (H, W) if c == 0 else (H // 2, W // 2)
            a = np.asarray(pl, dtype=np.int32)
            self.org.append(np.pad(a, ((0, sh[0] - a.shape[0]), (0, sh[1] - a.shape[1])), mode="edge"))
        self.rec = [np.zeros_like(o) for o in self.org]
        self.av = [np.zeros(o.shape, dtype=bool) for o in self.org]
        self.maps = PictureMaps(W, H, p.log2_ctb)
        self.edges = lf.new_edge_maps(H, W)
        self._satd_cache: dict[tuple[int, int, int], float] = {}
        ctb = 1 << p.log2_ctb
        ctb_rows, ctb_cols = -(-H // ctb), -(-W // ctb)
        if self.rd is not None:
            self.rd.start_picture()
            try:
                for ry in range(ctb_rows):
                    for rx in range(ctb_cols):
                        self.rd.code_ctu(rx * ctb, ry * ctb)
            finally:
                self.rd.end_picture()
        else:
            for ry in range(ctb_rows):
                for rx in range(ctb_cols):
                    self._decide(rx * ctb, ry * ctb, p.log2_ctb, 0)
        for cu in self.maps.cus.values():
            self._mark_edges(cu.tu)
        t1 = time.perf_counter()
        out = [r.copy() for r in self.rec]
        if p.deblock:
            qp_map = np.full((H // 4, W // 4), p.qp, dtype=np.int32)
            out = lf.deblock(out, self.edges, qp_map, self.bd)
        sao = None
        sao_l = sao_c = False
        if p.sao:
            sao = lf.sao_estimate(self.org, out, p.log2_ctb, self.bd, self.lam)
            sao_l, sao_c = sao.slice_flags()
            if sao_l or sao_c:
                out = lf.sao_apply(out, sao, p.log2_ctb, self.bd)
        t2 = time.perf_counter()
        data = self._write(sao, sao_l, sao_c, ctb_rows, ctb_cols)
        if p.md5:  # suffix SEI after the slice: MD5 of what the decoder outputs (coded size)
            data += annexb([md5_sei_nal(out, self.bd)])
        t3 = time.perf_counter()
        recon = [out[0][: p.height, : p.width], out[1][: p.height // 2, : p.width // 2],
                 out[2][: p.height // 2, : p.width // 2]]
        stats = {"decide_s": t1 - t0, "filter_s": t2 - t1, "write_s": t3 - t2,
                 "cus": len(self.maps.cus)}
        return EncodedPicture(data, recon, 8 * len(data), stats)

    def _write(self, sao, sao_l: bool, sao_c: bool, rows: int, cols: int) -> bytes:
        p = self.p
        cap = p.coded_width * p.coded_height * 4 + 4096
        while True:
            w = CabacWriter(INIT_VALUES_I, p.qp, capacity=cap)
            ctb = 1 << p.log2_ctb
            for ry in range(rows):
                for rx in range(cols):
                    if sao is not None and (sao_l or sao_c):
                        write_sao(w, sao, ry, rx, sao_l, sao_c, self.bd)
                    write_ctu(w, self.maps, rx * ctb, ry * ctb, p.max_tu_depth, p.log2_max_tb,
                              p.sign_hiding, p.transform_skip)
                    write_end_of_slice(w, ry == rows - 1 and rx == cols - 1)
            try:
                payload = w.getvalue()
                break
            except OverflowError:
                cap *= 4
        slice_nal = nal_unit(SLICE_NAL_TYPE, slice_header_bits(p, sao_l, sao_c) + payload)
        return annexb(self.param_nals + [slice_nal])

    # ----------------------------------------------------------------- decisions ---------
    def save_region(self, x: int, y: int, log2: int) -> tuple:
        """Snapshot of everything pass 1 changes when it codes the luma square (x, y, 2^log2)
        (reconstruction and availability of the three components, mode/depth maps, edge
        maps), so that an RD search can code a CU one way, measure, and undo it with
        :meth:`restore_region`. CABAC state has its own snapshot (CabacWriter.snapshot)."""
        n = 1 << log2
        ys, xs = slice(y, y + n), slice(x, x + n)
        yc, xc = slice(y >> 1, (y + n) >> 1), slice(x >> 1, (x + n) >> 1)
        y4, x4 = slice(y >> 2, (y + n) >> 2), slice(x >> 2, (x + n) >> 2)
        y8, x8 = slice(y >> 3, (y + n) >> 3), slice(x >> 3, (x + n) >> 3)
        parts = [(self.rec[0], (ys, xs)), (self.av[0], (ys, xs))]
        parts += [(a[c], (yc, xc)) for c in (1, 2) for a in (self.rec, self.av)]
        parts += [(self.maps.mode, (y4, x4)), (self.edges[0], (y4, x4)), (self.edges[1], (y4, x4)),
                  (self.maps.depth, (y8, x8))]
        return tuple((arr, sl, arr[sl].copy()) for arr, sl in parts)

    def restore_region(self, snap: tuple) -> None:
        for arr, sl, saved in snap:
            arr[sl] = saved

    def _decide(self, x: int, y: int, log2: int, depth: int) -> None:
        W, H = self.p.coded_width, self.p.coded_height
        if x >= W or y >= H:
            return
        s = 1 << log2
        split = x + s > W or y + s > H
        if not split and log2 > 3:
            split = self._split_wins(x, y, log2)
        if split:
            h = s >> 1
            for cx, cy in ((x, y), (x + h, y), (x, y + h), (x + h, y + h)):
                self._decide(cx, cy, log2 - 1, depth + 1)
        else:
            self._code_cu(x, y, log2, depth)

    def _source_mode_satd(self, x: int, y: int, log2: int) -> np.ndarray:
        """SATD of each of the 35 modes predicting the block from *source* neighbours with
        the availability it will have when coded; a 64x64 block is predicted as its four
        32x32 TBs are (cached: a parent's split test computes its children's values too)."""
        key = (x, y, log2)
        v = self._satd_cache.get(key)
        if v is None:
            org, av = self.org[0], self.av[0]
            if log2 <= 5:
                n = 1 << log2
                v = satd_batch(predict_all_modes(org, av, x, y, log2, 0, self.bd), org[y:y + n, x:x + n])
            else:
                v = np.zeros(35, dtype=np.int64)
                for qx, qy in ((x, y), (x + 32, y), (x, y + 32), (x + 32, y + 32)):
                    v += satd_batch(predict_all_modes(org, av, qx, qy, 5, 0, self.bd),
                                    org[qy:qy + 32, qx:qx + 32])
                    av[qy:qy + 32, qx:qx + 32] = True
                av[y:y + 64, x:x + 64] = False
            self._satd_cache[key] = v
        return v

    def _best_satd(self, x: int, y: int, log2: int) -> float:
        return float(self._source_mode_satd(x, y, log2).min())

    def _split_wins(self, x: int, y: int, log2: int) -> bool:
        """Parent vs four children, all predicted from source samples (cheap, unbiased
        between the two); each CU is charged ~4 bits of mode/split side information."""
        av = self.av[0]
        s, h = 1 << log2, 1 << (log2 - 1)
        cost_p = self._best_satd(x, y, log2) + self.lam_split * 4
        cost_c = self.lam_split * 17
        if cost_c >= cost_p:
            return False
        for cx, cy in ((x, y), (x + h, y), (x, y + h), (x + h, y + h)):
            cost_c += self._best_satd(cx, cy, log2 - 1)
            av[cy:cy + h, cx:cx + h] = True
            if cost_c >= cost_p:
                break
        av[y:y + s, x:x + s] = False
        return cost_c < cost_p

    def _mode_costs(self, x: int, y: int, log2: int) -> np.ndarray:
        """SATD + lambda * mode bits of the 35 luma modes of a PB, predicted from our
        reconstruction (64x64: from source, as its four TBs, see _source_mode_satd)."""
        n = 1 << log2
        if log2 <= 5:
            preds = predict_all_modes(self.rec[0], self.av[0], x, y, log2, 0, self.bd)
            cost = satd_batch(preds, self.org[0][y:y + n, x:x + n]).astype(np.float64)
        else:
            cost = self._source_mode_satd(x, y, log2).astype(np.float64)
        cands = mpm_candidates(self.maps, x, y)
        cost += self.lam_mode * 6.0
        for m in cands:
            cost[m] += self.lam_mode * (mode_bits(cands, m) - 6.0)
        return cost

    def _set_mode(self, x: int, y: int, log2: int, mode: int) -> None:
        n4 = 1 << (log2 - 2)
        self.maps.mode[y >> 2:(y >> 2) + n4, x >> 2:(x >> 2) + n4] = mode

    def _nxn_wins(self, x: int, y: int) -> bool:
        """2Nx2N vs NxN at an 8x8 CU, both predicted from source samples (the same cheap,
        unbiased comparison as the CU split): NxN pays 3 more mode codes."""
        av = self.av[0]
        cost_2n = self._best_satd(x, y, 3) + self.lam_split * 4
        cost_nxn = self.lam_split * 16
        if cost_nxn >= cost_2n:
            return False
        for px, py in ((x, y), (x + 4, y), (x, y + 4), (x + 4, y + 4)):
            cost_nxn += self._best_satd(px, py, 2)
            av[py:py + 4, px:px + 4] = True
            if cost_nxn >= cost_2n:
                break
        av[y:y + 8, x:x + 8] = False
        return cost_nxn < cost_2n

    def _code_cu(self, x: int, y: int, log2: int, depth: int) -> None:
        s = 1 << log2
        maps = self.maps
        maps.depth[y >> 3:(y + s) >> 3, x >> 3:(x + s) >> 3] = depth
        if log2 == 3 and self._nxn_wins(x, y):
            node = TransformNode(x, y, 3, 0, split=True)
            modes = []
            for px, py in ((x, y), (x + 4, y), (x, y + 4), (x + 4, y + 4)):
                m4 = int(np.argmin(self._mode_costs(px, py, 2)))
                modes.append(m4)
                self._set_mode(px, py, 2, m4)
                ch = TransformNode(px, py, 2, 1)
                self._code_luma_tb(ch, m4)
                node.children.append(ch)
            cu = CodingUnit(x, y, 3, True, modes, 4, 0, node)
        else:
            mode = int(np.argmin(self._mode_costs(x, y, log2)))
            self._set_mode(x, y, log2, mode)
            cu = CodingUnit(x, y, log2, False, [mode], 4, 0, self._luma_tree(x, y, log2, 0, mode))
        # chroma mode: best SATD of the five candidates (derived mode 4 first on ties)
        cu.chroma_idx, cu.chroma_mode = self._chroma_mode(x >> 1, y >> 1, log2 - 1, cu.luma_modes[0])
        self._chroma_tree(cu.tu, cu.chroma_mode)
        maps.cus[(x, y)] = cu

    def _chroma_mode(self, xc: int, yc: int, log2c: int, luma_mode: int) -> tuple[int, int]:
        n = 1 << log2c
        tot = np.zeros(35)
        for c in (1, 2):
            preds = predict_all_modes(self.rec[c], self.av[c], xc, yc, log2c, c, self.bd)
            tot += satd_batch(preds, self.org[c][yc:yc + n, xc:xc + n])
        best = (tot[luma_mode] + self.lam_mode * 1, 4, luma_mode)
        for idx in range(4):
            m = chroma_mode_from(idx, luma_mode)
            cst = tot[m] + self.lam_mode * 3
            if cst < best[0]:
                best = (cst, idx, m)
        return best[1], best[2]

    def _luma_tree(self, x: int, y: int, log2: int, depth: int, mode: int) -> TransformNode:
        node = TransformNode(x, y, log2, depth)
        p = self.p
        if log2 > p.log2_max_tb:
            node.split = True
        elif log2 > 2 and depth < p.max_tu_depth:
            node.split = self._tu_split_wins(x, y, log2, mode)
        if node.split:
            h = 1 << (log2 - 1)
            for cx, cy in ((x, y), (x + h, y), (x, y + h), (x + h, y + h)):
                node.children.append(self._luma_tree(cx, cy, log2 - 1, depth + 1, mode))
        else:
            self._code_luma_tb(node, mode)
        return node

    def _tu_split_wins(self, x: int, y: int, log2: int, mode: int) -> bool:
        """Predicting from nearer samples pays when the four quadrants' SATD (source
        neighbours) beats the whole block's by more than ~12 bits of side information."""
        org, av = self.org[0], self.av[0]
        n, h = 1 << log2, 1 << (log2 - 1)
        whole = satd(predict_intra(org, av, x, y, log2, mode, 0, self.bd), org[y:y + n, x:x + n])
        parts = self.lam_split * 12
        for cx, cy in ((x, y), (x + h, y), (x, y + h), (x + h, y + h)):
            parts += satd(predict_intra(org, av, cx, cy, log2 - 1, mode, 0, self.bd),
                          org[cy:cy + h, cx:cx + h])
            av[cy:cy + h, cx:cx + h] = True
        av[y:y + n, x:x + n] = False
        return parts < whole

    def _chroma_tree(self, node: TransformNode, cmode: int) -> None:
        if node.split and node.log2 > 3:
            for ch in node.children:
                self._chroma_tree(ch, cmode)
            return
        xc, yc, lc = node.x >> 1, node.y >> 1, node.log2 - 1
        if (self.p.transform_skip and lc == 2) or self.qpc[1] != self.qpc[2]:
            for c in (1, 2):
                lv, ts, scan = self._code_tb(c, xc, yc, lc, cmode, node.depth)
                if c == 1:
                    node.cb = lv
                else:
                    node.cr = lv
                node.ts[c], node.scan[c] = ts, scan
            return
        # Cb and Cr as one batch of two blocks (same size, mode, scan and QP)
        n, bd = 1 << lc, self.bd
        scan = scan_idx_for(cmode, lc, 1)
        preds = [predict_intra(self.rec[c], self.av[c], xc, yc, lc, cmode, c, bd) for c in (1, 2)]
        resid = np.stack([self.org[c][yc:yc + n, xc:xc + n] - preds[c - 1] for c in (1, 2)])
        lv = self._quantize(forward_transform(resid, lc, False, bd), self.qpc[1], lc, 1, scan, node.depth)
        nz = lv.reshape(2, -1).any(axis=1)
        r = inverse_transform(dequantize(lv, self.qpc[1], lc, bd), lc, False, bd) if nz.any() else None
        for k, c in enumerate((1, 2)):
            if nz[k]:
                self.rec[c][yc:yc + n, xc:xc + n] = np.clip(preds[k] + r[k], 0, self.maxv)
            else:
                self.rec[c][yc:yc + n, xc:xc + n] = preds[k]
            self.av[c][yc:yc + n, xc:xc + n] = True
        node.cb = np.ascontiguousarray(lv[0]) if nz[0] else None
        node.cr = np.ascontiguousarray(lv[1]) if nz[1] else None
        node.scan[1] = node.scan[2] = scan

    def _code_luma_tb(self, node: TransformNode, mode: int) -> None:
        lv, ts, scan = self._code_tb(0, node.x, node.y, node.log2, mode, node.depth)
        node.luma, node.ts[0], node.scan[0] = lv, ts, scan

    def _mark_edges(self, node: TransformNode) -> None:
        """Deblocking edges of the final luma TBs (after the decisions, so a search's trials
        leave no marks)."""
        if node.split:
            for ch in node.children:
                self._mark_edges(ch)
        else:
            lf.mark_block_edges(*self.edges, node.x, node.y, 1 << node.log2, 1 << node.log2)

    def _est_bits(self, lv: np.ndarray, log2: int, c: int, scan: int, ts_flag: bool) -> float:
        eng = self._est_eng
        eng[E_FRAC] = 0
        ctx = self._ctx0.copy()
        code_residual(eng, ctx, self._est_buf, lv, log2, c, scan, self.p.sign_hiding, True,
                      int(ts_flag), SB_SCAN, C4_SCAN)
        return eng[E_FRAC] / FRAC_ONE

    def _quantize(self, coeffs: np.ndarray, qp: int, log2: int, c: int, scan: int | np.ndarray,
                  depth: int = 0) -> np.ndarray:
        """The quantizer on a batch (scan: one scanIdx or one per block; depth: trafoDepth,
        which picks the cbf context RDOQ prices). Blocks whose coefficients are all below
        half a step (|c| * quantScale < 2^(qbits-1)) are not handed over: no quantizer of
        the HM family (SQ with a dead-zone offset <= 1/2, RDOQ, whose largest candidate is
        the rounded level) codes anything there, and a call costs more than a small TB."""
        qpp = qp + 6 * (self.bd - 8)
        qbits = quant_shift(qp, log2, self.bd)
        nb = coeffs.shape[0]
        live = np.abs(coeffs).reshape(nb, -1).max(axis=1) * QUANT_SCALES[qpp % 6] >= (1 << (qbits - 1))
        if not live.any():
            return np.zeros(coeffs.shape, dtype=np.int32)
        kw = {"trafo_depth": depth} if self._q_depth else {}
        if live.all():
            return self.q.quantize(coeffs, qp, log2, self.bd, c, scan, self.p.sign_hiding, **kw)
        out = np.zeros(coeffs.shape, dtype=np.int32)
        sc = scan[live] if isinstance(scan, np.ndarray) else scan
        out[live] = self.q.quantize(np.ascontiguousarray(coeffs[live]), qp, log2, self.bd, c, sc,
                                    self.p.sign_hiding, **kw)
        return out

    def _code_tb(self, c: int, x: int, y: int, log2: int, mode: int, depth: int = 0
                 ) -> tuple[np.ndarray | None, bool, int]:
        """Predict, transform, quantize and reconstruct one TB at trafoDepth ``depth``;
        returns (levels or None, transform_skip_flag, scanIdx)."""
        n = 1 << log2
        bd = self.bd
        rec, av, org = self.rec[c], self.av[c], self.org[c]
        pred = predict_intra(rec, av, x, y, log2, mode, c, bd)
        resid = (org[y:y + n, x:x + n] - pred)[None]
        scan = scan_idx_for(mode, log2, c)
        qp = self.qpc[c]
        dst = c == 0 and log2 == 2
        lv = self._quantize(forward_transform(resid, log2, dst, bd), qp, log2, c, scan, depth)[0]
        ts = False
        if lv.any():
            r = inverse_transform(dequantize(lv, qp, log2, bd), log2, dst, bd)
        else:
            r = None
        if self.p.transform_skip and log2 == 2:
            lts = self._quantize(forward_transform_skip(resid, log2, bd), qp, log2, c, scan, depth)[0]
            rts = inverse_transform_skip(dequantize(lts, qp, log2, bd), log2, bd) if lts.any() else None
            o = org[y:y + n, x:x + n]

            def cost(lvl, rr, tsf):
                rc = pred if rr is None else np.clip(pred + rr, 0, self.maxv)
                d = float(((o - rc).astype(np.int64) ** 2).sum())
                bits = self._est_bits(lvl, log2, c, scan, tsf) if rr is not None else 1.0
                return d + self.lam * bits
            if lts.any() and cost(lts, rts, True) < cost(lv, r, False):
                lv, r, ts = lts, rts, True
        if r is None:
            rec[y:y + n, x:x + n] = pred
            lv_out = None
            ts = False
        else:
            rec[y:y + n, x:x + n] = np.clip(pred + r, 0, self.maxv)
            lv_out = np.ascontiguousarray(lv, dtype=np.int32)
        av[y:y + n, x:x + n] = True
        return lv_out, ts, scan
