"""Rate-distortion search of the all-intra encoder (HM's TEncCu / TEncSearch, intra part).

Per CU: rough luma mode decision (Hadamard SATD + sqrt(lambda) * mode bits priced from the
current CABAC state) keeps the preset's number of candidates plus the three MPMs; each
candidate is then coded for real at the TU root (one batch: predict, transform, quantize,
reconstruct, SSE + lambda * CABAC-estimated bits of cbf + residual + mode); the best ones
get the residual-quadtree (TU split) by RD cost; the chroma mode is chosen by RD cost over
its five candidates (chroma SSE weighted by 2^((QP - QPc) / 3), HM's weight); 2Nx2N vs NxN
at 8x8 and the CU split (64 down to 8) compare the whole RD cost of both, with the CABAC
contexts carried through the search in coding order (snapshot / restore) and every trial
undone with ``PictureEncoder.save_region`` / ``restore_region``.

All rates come from one estimate-mode CABAC writer whose contexts follow the decisions
made so far; the quantizer sees the same contexts (``EncoderQuantizer.live_ctx``), so RDOQ
prices levels with the states the block will really be coded with (up to the adaptation
inside the CU). The final bitstream is written afterwards from the chosen records, so the
search can never break decodability: it only chooses.

Presets (``PRESETS``): ``fast`` = no RD search (SATD decisions of encoder.py), ``medium``
and ``slow`` = this search with fewer / HM's numbers of candidates and checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from codeclab.bitstream.cabac import E_FRAC, ENTROPY_BITS, FRAC_ONE, CabacWriter, encode_bin, new_engine
from codeclab.codecs.hevc import tables as T
from codeclab.codecs.hevc.intra import chroma_mode_from, predict_all_modes
from codeclab.codecs.hevc.residual import C4_SCAN, SB_SCAN, code_residual
from codeclab.codecs.hevc.satd import satd_batch
from codeclab.codecs.hevc.scalar_quant import dequantize
from codeclab.codecs.hevc.scan import scan_idx_for
from codeclab.codecs.hevc.syntax import CodingUnit, TransformNode, mpm_candidates, write_cu
from codeclab.codecs.hevc.transform import forward_transform, inverse_transform

__all__ = ["Preset", "PRESETS", "RdSearch", "price_luma_batch"]


@dataclass(frozen=True)
class Preset:
    """How hard the encoder searches.

    rd: RD search (False = encoder.py's SATD decisions); n_rd: luma candidates given a full
    RD check per PU size log2 2..6 (HM: 8, 8, 3, 3, 3); mpm: add the three MPMs to them;
    tu_modes: how many of the best modes (after the TU-root check) get the TU-split check;
    chroma_all: all five chroma candidates (else DM + the best chroma SATD); early_cu:
    skip the split check of a CU coded whole without any residual (HM's ECU idea);
    satd_depth: the CU quadtree is searched only around the SATD decisions' depth (where
    those keep a CU whole, its four children are tried coded whole, nothing deeper; NxN
    only where SATD prefers it or the 2Nx2N CU has a luma residual)."""

    name: str
    rd: bool
    n_rd: tuple[int, int, int, int, int] = (8, 8, 3, 3, 3)
    mpm: bool = True
    tu_modes: int = 1
    chroma_all: bool = True
    early_cu: bool = False
    satd_depth: bool = False


PRESETS: dict[str, Preset] = {
    "fast": Preset("fast", False),
    "medium": Preset("medium", True, (3, 3, 2, 2, 2), mpm=False, tu_modes=1, chroma_all=False,
                     early_cu=True, satd_depth=True),
    "slow": Preset("slow", True, (8, 8, 3, 3, 3), mpm=True, tu_modes=2, chroma_all=True,
                   early_cu=False),
}


@njit(cache=True)
def _price_batch(eng, buf, ctx, levels, log2, c_idx, scans, sign_hiding, ts_allowed,
                 cbf_ci, out):  # pragma: no cover - numba
    """Bits (1/32768) of cbf + residual_coding of each block from the same context state."""
    tmp = ctx.copy()
    for b in range(levels.shape[0]):
        tmp[:] = ctx
        eng[E_FRAC] = 0
        nz = False
        for v in levels[b].ravel():
            if v != 0:
                nz = True
                break
        encode_bin(eng, tmp, buf, cbf_ci, 1 if nz else 0)
        if nz:
            code_residual(eng, tmp, buf, levels[b], log2, c_idx, scans[b], sign_hiding,
                          ts_allowed, 0, SB_SCAN, C4_SCAN)
        out[b] = eng[E_FRAC]


def price_luma_batch(ctx: np.ndarray, levels: np.ndarray, log2: int, scans: np.ndarray,
                     depth: int, sign_hiding: bool, ts_allowed: bool) -> np.ndarray:
    """Estimated bits (float) of cbf_luma + residual of each luma block (B, n, n) at
    trafoDepth ``depth``, every block from the context state ``ctx`` (not changed)."""
    out = np.empty(levels.shape[0], dtype=np.int64)
    _price_batch(new_engine(1), np.zeros(16, np.uint8), ctx, np.ascontiguousarray(levels, np.int32),
                 log2, 0, np.ascontiguousarray(scans, np.int64), sign_hiding, ts_allowed,
                 T.CTX_CBF_LUMA + (1 if depth == 0 else 0), out)
    return out / FRAC_ONE


class RdSearch:
    """The RD search over one PictureEncoder's per-picture state (rec, av, maps)."""

    def __init__(self, enc, preset: Preset) -> None:
        self.e = enc
        self.pr = preset
        p = enc.p
        self.lam = enc.lambdas.rd
        self.sqrt_lam = enc.lambdas.satd
        self.wc = enc.lambdas.chroma_weight
        self.max_tu = p.max_tu_depth
        self.w: CabacWriter | None = None
        self._root: tuple = (None, {})  # _root_costs' coded candidates of the current PB

    # ------------------------------------------------------------------ helpers ----------
    def start_picture(self) -> None:
        from codeclab.codecs.hevc.tables import INIT_VALUES_I

        self.w = CabacWriter(INIT_VALUES_I, self.e.p.qp, capacity=16, estimate=True)
        if hasattr(self.e.q, "live_ctx"):
            self.e.q.live_ctx = self.w.ctx

    def end_picture(self) -> None:
        if hasattr(self.e.q, "live_ctx"):
            self.e.q.live_ctx = None

    def _flag_bits(self, ci: int, b: int) -> float:
        return ENTROPY_BITS[int(self.w.ctx[ci]) ^ b] / FRAC_ONE

    def _encode_flag(self, ci: int, b: int) -> float:
        """Code one context bin on the carried writer; its bits."""
        b0 = self.w.eng[E_FRAC]
        encode_bin(self.w.eng, self.w.ctx, self.w.buf, ci, b)
        return (self.w.eng[E_FRAC] - b0) / FRAC_ONE

    def _sse(self, c: int, x: int, y: int, n: int) -> float:
        d = self.e.org[c][y:y + n, x:x + n] - self.e.rec[c][y:y + n, x:x + n]
        return float(np.einsum("ij,ij->", d, d, dtype=np.int64))

    def _cu_cost_d(self, x: int, y: int, log2: int) -> float:
        n = 1 << log2
        return (self._sse(0, x, y, n)
                + self.wc * (self._sse(1, x >> 1, y >> 1, n >> 1) + self._sse(2, x >> 1, y >> 1, n >> 1)))

    def _save_luma(self, x: int, y: int, n: int) -> tuple:
        e = self.e
        return (e.rec[0][y:y + n, x:x + n].copy(), e.av[0][y:y + n, x:x + n].copy(), x, y, n)

    def _restore_luma(self, s: tuple) -> None:
        r, a, x, y, n = s
        self.e.rec[0][y:y + n, x:x + n] = r
        self.e.av[0][y:y + n, x:x + n] = a

    def _save_chroma(self, xc: int, yc: int, n: int) -> tuple:
        e = self.e
        return tuple((c, e.rec[c][yc:yc + n, xc:xc + n].copy(), e.av[c][yc:yc + n, xc:xc + n].copy())
                     for c in (1, 2)) + ((xc, yc, n),)

    def _restore_chroma(self, s: tuple) -> None:
        xc, yc, n = s[-1]
        for c, r, a in s[:-1]:
            self.e.rec[c][yc:yc + n, xc:xc + n] = r
            self.e.av[c][yc:yc + n, xc:xc + n] = a

    # ------------------------------------------------------------------ CU quadtree ------
    def code_ctu(self, x: int, y: int) -> None:
        self.cu(x, y, self.e.p.log2_ctb, 0)

    def cu(self, x: int, y: int, log2: int, depth: int, deeper: bool = True) -> float:
        """Decide and code the CU quadtree node (x, y, 2^log2); its RD cost J. deeper=False:
        code it whole (no split check; 8x8: no NxN check)."""
        e = self.e
        W, H = e.p.coded_width, e.p.coded_height
        if x >= W or y >= H:
            return 0.0
        s = 1 << log2
        h = s >> 1
        kids = ((x, y), (x + h, y), (x, y + h), (x + h, y + h))
        if x + s > W or y + s > H:  # forced split, no flag
            return sum(self.cu(cx, cy, log2 - 1, depth + 1) for cx, cy in kids)
        if log2 == 3:
            if not deeper:
                return self._code_cu(x, y, 3, depth, False)
            return self._cu_8x8(x, y, depth)
        child_deeper = True
        if self.pr.satd_depth:
            if not deeper:
                child_deeper = None
            elif not e._split_wins(x, y, log2):
                child_deeper = False
        maps = e.maps
        inc = 0
        if x > 0 and maps.depth[y >> 3, (x - 1) >> 3] > depth:
            inc += 1
        if y > 0 and maps.depth[(y - 1) >> 3, x >> 3] > depth:
            inc += 1
        ci = T.CTX_SPLIT_CU + inc
        ctx0 = self.w.snapshot()
        reg0 = e.save_region(x, y, log2)
        j_whole = self.lam * self._encode_flag(ci, 0) + self._code_cu(x, y, log2, depth, False)
        cu_whole = maps.cus[(x, y)]
        if child_deeper is None or (self.pr.early_cu and not _has_residual(cu_whole.tu)):
            return j_whole
        ctx_whole = self.w.snapshot()
        reg_whole = e.save_region(x, y, log2)
        self.w.restore(ctx0)
        e.restore_region(reg0)
        del maps.cus[(x, y)]
        j_split = self.lam * self._encode_flag(ci, 1)
        for cx, cy in kids:
            j_split += self.cu(cx, cy, log2 - 1, depth + 1, child_deeper)
            if j_split >= j_whole:
                break
        if j_split < j_whole:
            return j_split
        for yy in range(y, y + s, 8):
            for xx in range(x, x + s, 8):
                maps.cus.pop((xx, yy), None)
        self.w.restore(ctx_whole)
        e.restore_region(reg_whole)
        maps.cus[(x, y)] = cu_whole
        return j_whole

    def _cu_8x8(self, x: int, y: int, depth: int) -> float:
        """2Nx2N against NxN (four 4x4 PUs) by RD cost."""
        e = self.e
        ctx0 = self.w.snapshot()
        reg0 = e.save_region(x, y, 3)
        nxn_satd = self.pr.satd_depth and e._nxn_wins(x, y)  # (uses av: before coding)
        j2 = self._code_cu(x, y, 3, depth, False)
        if self.pr.satd_depth and not nxn_satd and e.maps.cus[(x, y)].tu.luma is None:
            return j2
        keep = (self.w.snapshot(), e.save_region(x, y, 3), e.maps.cus[(x, y)])
        self.w.restore(ctx0)
        e.restore_region(reg0)
        jn = self._code_cu(x, y, 3, depth, True)
        if jn < j2:
            return jn
        self.w.restore(keep[0])
        e.restore_region(keep[1])
        e.maps.cus[(x, y)] = keep[2]
        return j2

    def _code_cu(self, x: int, y: int, log2: int, depth: int, nxn: bool) -> float:
        """Code one CU (modes, TU tree, chroma by RD); leaves it in the maps and the carried
        contexts advanced past it; returns D + lambda * R of the whole CU."""
        e = self.e
        s = 1 << log2
        e.maps.depth[y >> 3:(y + s) >> 3, x >> 3:(x + s) >> 3] = depth
        ctx_start = self.w.snapshot()
        if nxn:
            node = TransformNode(x, y, 3, 0, split=True)
            modes = []
            for px, py in ((x, y), (x + 4, y), (x, y + 4), (x + 4, y + 4)):
                m, ch = self._luma_pu(px, py, 2, 1)
                modes.append(m)
                node.children.append(ch)
            cu = CodingUnit(x, y, 3, True, modes, 4, 0, node)
        else:
            m, node = self._luma_pu(x, y, log2, 0)
            cu = CodingUnit(x, y, log2, False, [m], 4, 0, node)
        self._chroma_rd(cu)
        self.w.restore(ctx_start)
        b0 = self.w.eng[E_FRAC]
        p = e.p
        write_cu(self.w, e.maps, cu, p.max_tu_depth, p.log2_max_tb, p.sign_hiding, p.transform_skip)
        bits = (self.w.eng[E_FRAC] - b0) / FRAC_ONE
        e.maps.cus[(x, y)] = cu
        return self._cu_cost_d(x, y, log2) + self.lam * bits

    # ------------------------------------------------------------------ luma -------------
    def _mode_bits(self, cands: tuple[int, int, int]) -> np.ndarray:
        """Bits of each of the 35 luma modes' syntax from the current prev_intra context."""
        f0 = self._flag_bits(T.CTX_PREV_INTRA, 0)
        f1 = self._flag_bits(T.CTX_PREV_INTRA, 1)
        bits = np.full(35, f0 + 5.0)
        bits[cands[0]] = f1 + 1.0
        bits[cands[1]] = f1 + 2.0
        bits[cands[2]] = f1 + 2.0
        return bits

    def _luma_pu(self, x: int, y: int, log2: int, depth: int) -> tuple[int, TransformNode]:
        """Choose and code the luma mode of one PB (TU tree rooted at trafoDepth depth)."""
        e = self.e
        n = 1 << log2
        self._root = (None, {})
        cands = mpm_candidates(e.maps, x, y)
        mbits = self._mode_bits(cands)
        if log2 <= 5:
            preds = predict_all_modes(e.rec[0], e.av[0], x, y, log2, 0, e.bd)
            rough = satd_batch(preds, e.org[0][y:y + n, x:x + n]) + self.sqrt_lam * mbits
        else:
            preds = None
            rough = e._source_mode_satd(x, y, log2) + self.sqrt_lam * mbits
        k = self.pr.n_rd[log2 - 2]
        order = np.argsort(rough, kind="stable")[:k].tolist()
        if self.pr.mpm:
            order += [m for m in cands if m not in order]
        if len(order) > 1 and preds is not None:
            j = self._root_costs(x, y, log2, depth, order, preds) + self.lam * mbits[order]
            ranked = [order[i] for i in np.argsort(j, kind="stable")]
        else:
            ranked = order
        if preds is None:  # 64x64 CU (four 32x32 TBs): full sequential checks of all
            tries = ranked
        elif 2 < log2 <= e.p.log2_max_tb and depth < self.max_tu:  # TU split possible
            tries = ranked[: max(1, self.pr.tu_modes)]
        else:
            tries = ranked[:1]
        best = None
        if len(tries) > 1:
            ctx0 = self.w.snapshot()
            sv = self._save_luma(x, y, n)
            for m in tries:
                self.e._set_mode(x, y, log2, m)
                node, j = self._luma_tree(x, y, log2, depth, m)
                j += self.lam * mbits[m]
                if best is None or j < best[0]:
                    best = (j, m, node, self.w.snapshot(), self._save_luma(x, y, n))
                self.w.restore(ctx0)
                self._restore_luma(sv)
            _, m, node, ctx_b, sv_b = best
            self.w.restore(ctx_b)
            self._restore_luma(sv_b)
            self.e._set_mode(x, y, log2, m)
            return m, node
        m = tries[0]
        self.e._set_mode(x, y, log2, m)
        node, _ = self._luma_tree(x, y, log2, depth, m)
        return m, node

    def _root_costs(self, x: int, y: int, log2: int, depth: int, modes: list[int],
                    preds: np.ndarray) -> np.ndarray:
        """D + lambda * (cbf + residual bits) of each candidate mode coded as one TB, all
        from the same neighbours and contexts, as one batch (no state changes)."""
        e = self.e
        n, bd = 1 << log2, e.bd
        org = e.org[0][y:y + n, x:x + n]
        pr = preds[modes]
        scans = np.array([scan_idx_for(m, log2, 0) for m in modes], dtype=np.int64)
        lv = e._quantize(forward_transform(org - pr, log2, log2 == 2, bd), e.qpc[0], log2, 0, scans,
                         depth)
        nz = lv.reshape(len(modes), -1).any(axis=1)
        rec = pr.copy()
        if nz.any():
            r = inverse_transform(dequantize(lv[nz], e.qpc[0], log2, bd), log2, log2 == 2, bd)
            rec[nz] = np.clip(pr[nz] + r, 0, e.maxv)
        d = (org[None] - rec).reshape(len(modes), -1).astype(np.int64)
        dist = np.einsum("ij,ij->i", d, d).astype(np.float64)
        if not (e.p.transform_skip and log2 == 2):  # the chosen one's leaf is reused
            self._root = ((x, y, log2, depth), {m: (lv[k] if nz[k] else None, rec[k], int(scans[k]))
                                               for k, m in enumerate(modes)})
        bits = price_luma_batch(self.w.ctx, lv, log2, scans, depth, e.p.sign_hiding,
                                e.p.transform_skip and log2 == 2)
        flag = 0.0
        if 2 < log2 <= e.p.log2_max_tb and depth < self.max_tu:  # split_transform_flag = 0
            flag = self._flag_bits(T.CTX_SPLIT_TF + 5 - log2, 0)
        return dist + self.lam * (bits + flag)

    def _luma_tree(self, x: int, y: int, log2: int, depth: int, mode: int
                   ) -> tuple[TransformNode, float]:
        """Code the luma transform tree of one PB with mode ``mode``, the TU split chosen by
        RD cost; contexts advanced past it; returns (node, D + lambda * R of luma)."""
        e = self.e
        node = TransformNode(x, y, log2, depth)
        h = 1 << (log2 - 1)
        kids = ((x, y), (x + h, y), (x, y + h), (x + h, y + h))
        if log2 > e.p.log2_max_tb:  # forced split (64x64 CU), no flag
            node.split = True
            j = 0.0
            for cx, cy in kids:
                ch, jc = self._luma_tree(cx, cy, log2 - 1, depth + 1, mode)
                node.children.append(ch)
                j += jc
            return node, j
        # NxN only exists at 8x8, so its 4x4 PBs (trafoDepth 1) can never split further
        can_split = log2 > 2 and depth < self.max_tu
        ci = T.CTX_SPLIT_TF + 5 - log2
        if not can_split:
            return node, self._luma_leaf(node, mode)
        ctx0 = self.w.snapshot()
        sv = self._save_luma(x, y, 1 << log2)
        j_leaf = self.lam * self._encode_flag(ci, 0) + self._luma_leaf(node, mode)
        leaf = (self.w.snapshot(), self._save_luma(x, y, 1 << log2), node.luma, node.ts[0], node.scan[0])
        self.w.restore(ctx0)
        self._restore_luma(sv)
        split = TransformNode(x, y, log2, depth, split=True)
        j_split = self.lam * self._encode_flag(ci, 1)
        for cx, cy in kids:
            ch, jc = self._luma_tree(cx, cy, log2 - 1, depth + 1, mode)
            split.children.append(ch)
            j_split += jc
            if j_split >= j_leaf:
                break
        if j_split < j_leaf:
            return split, j_split
        self.w.restore(leaf[0])
        self._restore_luma(leaf[1])
        node.luma, node.ts[0], node.scan[0] = leaf[2], leaf[3], leaf[4]
        return node, j_leaf

    def _luma_leaf(self, node: TransformNode, mode: int) -> float:
        """Code one luma TB for real (encoder._code_tb: quantizer, transform skip choice,
        reconstruction), price cbf + residual on the carried contexts; D + lambda * R."""
        e = self.e
        n = 1 << node.log2
        hit = self._root[1].get(mode) if self._root[0] == (node.x, node.y, node.log2, node.depth) else None
        if hit is not None:  # coded already by _root_costs from the same neighbours
            lv, rec, scan = hit
            lv = None if lv is None else np.ascontiguousarray(lv)
            ts = False
            e.rec[0][node.y:node.y + n, node.x:node.x + n] = rec
            e.av[0][node.y:node.y + n, node.x:node.x + n] = True
        else:
            lv, ts, scan = e._code_tb(0, node.x, node.y, node.log2, mode, node.depth)
        node.luma, node.ts[0], node.scan[0] = lv, ts, scan
        w = self.w
        b0 = w.eng[E_FRAC]
        encode_bin(w.eng, w.ctx, w.buf, T.CTX_CBF_LUMA + (1 if node.depth == 0 else 0), int(lv is not None))
        if lv is not None:
            code_residual(w.eng, w.ctx, w.buf, lv, node.log2, 0, scan, e.p.sign_hiding,
                          e.p.transform_skip and node.log2 == 2, int(ts), SB_SCAN, C4_SCAN)
        bits = (w.eng[E_FRAC] - b0) / FRAC_ONE
        return self._sse(0, node.x, node.y, 1 << node.log2) + self.lam * bits

    # ------------------------------------------------------------------ chroma -----------
    def _chroma_rd(self, cu: CodingUnit) -> None:
        """intra_chroma_pred_mode by RD cost (weighted chroma SSE + lambda * the CU's bits),
        then the chosen chroma TBs are coded."""
        e = self.e
        lm = cu.luma_modes[0]
        xc, yc, nc = cu.x >> 1, cu.y >> 1, 1 << (cu.log2 - 1)
        if self.pr.chroma_all:
            cands = [(4, lm)] + [(i, chroma_mode_from(i, lm)) for i in range(4)]
        else:
            idx, m = e._chroma_mode(xc, yc, cu.log2 - 1, lm)
            cands = [(4, lm)] + ([(idx, m)] if idx != 4 else [])
        p = e.p
        if (len(cands) > 1 and not (cu.tu.split and cu.log2 > 3) and e.qpc[1] == e.qpc[2]
                and not (p.transform_skip and cu.log2 == 3)):
            self._chroma_batch(cu, cands)
            return
        if len(cands) > 1:
            sv = self._save_chroma(xc, yc, nc)
            ctx0 = self.w.snapshot()
            best = None
            for idx, m in cands:
                cu.chroma_idx, cu.chroma_mode = idx, m
                e._chroma_tree(cu.tu, m)
                d = self.wc * (self._sse(1, xc, yc, nc) + self._sse(2, xc, yc, nc))
                b0 = self.w.eng[E_FRAC]
                write_cu(self.w, e.maps, cu, p.max_tu_depth, p.log2_max_tb, p.sign_hiding,
                         p.transform_skip)
                j = d + self.lam * (self.w.eng[E_FRAC] - b0) / FRAC_ONE
                self.w.restore(ctx0)
                self._restore_chroma(sv)
                if best is None or j < best[0]:
                    best = (j, idx, m)
            cands = [best[1:]]
        cu.chroma_idx, cu.chroma_mode = cands[0]
        e._chroma_tree(cu.tu, cu.chroma_mode)


    def _chroma_batch(self, cu: CodingUnit, cands: list[tuple[int, int]]) -> None:
        """_chroma_rd for a CU whose chroma is one TB per component: every candidate's Cb
        and Cr coded in one batch from the same neighbours. Priced by the chroma syntax
        alone (intra_chroma_pred_mode, cbf_cb / cbf_cr at trafoDepth 0, the two residuals):
        the rest of the CU is the same for every candidate and touches none of those
        contexts, so the differences in J are exactly those of write_cu."""
        e = self.e
        p, bd, node = e.p, e.bd, cu.tu
        xc, yc, lc = cu.x >> 1, cu.y >> 1, cu.log2 - 1
        n, k = 1 << lc, len(cands)
        modes = [m for _, m in cands]
        pr = np.concatenate([predict_all_modes(e.rec[c], e.av[c], xc, yc, lc, c, bd)[modes]
                             for c in (1, 2)])
        org = np.concatenate([np.broadcast_to(e.org[c][yc:yc + n, xc:xc + n], (k, n, n)) for c in (1, 2)])
        scans = np.array([scan_idx_for(m, lc, 1) for m in modes] * 2, dtype=np.int64)
        lv = e._quantize(forward_transform(org - pr, lc, False, bd), e.qpc[1], lc, 1, scans, 0)
        nz = lv.reshape(2 * k, -1).any(axis=1)
        rec = pr.copy()
        if nz.any():
            r = inverse_transform(dequantize(lv[nz], e.qpc[1], lc, bd), lc, False, bd)
            rec[nz] = np.clip(pr[nz] + r, 0, e.maxv)
        d = (org - rec).reshape(2 * k, -1).astype(np.int64)
        sse = np.einsum("ij,ij->i", d, d).astype(np.float64)
        ctx0 = self.w.snapshot()
        best = None
        for i, (idx, m) in enumerate(cands):
            cu.chroma_idx, cu.chroma_mode = idx, m
            node.cb = np.ascontiguousarray(lv[i]) if nz[i] else None
            node.cr = np.ascontiguousarray(lv[k + i]) if nz[k + i] else None
            node.scan[1] = node.scan[2] = int(scans[i])
            w = self.w
            b0 = w.eng[E_FRAC]
            encode_bin(w.eng, w.ctx, w.buf, T.CTX_CHROMA_MODE, 0 if idx == 4 else 1)
            extra = 0.0 if idx == 4 else 2.0  # two bypass bins
            for lvc in (node.cb, node.cr):
                encode_bin(w.eng, w.ctx, w.buf, T.CTX_CBF_CHROMA, int(lvc is not None))
            for ci, lvc in ((1, node.cb), (2, node.cr)):
                if lvc is not None:
                    code_residual(w.eng, w.ctx, w.buf, lvc, lc, ci, int(scans[i]), p.sign_hiding,
                                  False, 0, SB_SCAN, C4_SCAN)
            j = self.wc * (sse[i] + sse[k + i]) + self.lam * ((w.eng[E_FRAC] - b0) / FRAC_ONE + extra)
            w.restore(ctx0)
            if best is None or j < best[0]:
                best = (j, i)
        i = best[1]
        cu.chroma_idx, cu.chroma_mode = cands[i]
        node.cb = np.ascontiguousarray(lv[i]) if nz[i] else None
        node.cr = np.ascontiguousarray(lv[k + i]) if nz[k + i] else None
        node.scan[1] = node.scan[2] = int(scans[i])
        for j, c in enumerate((1, 2)):
            e.rec[c][yc:yc + n, xc:xc + n] = rec[j * k + i]
            e.av[c][yc:yc + n, xc:xc + n] = True


def _has_residual(node: TransformNode) -> bool:
    if node.luma is not None or node.cb is not None or node.cr is not None:
        return True
    return any(_has_residual(c) for c in node.children)
