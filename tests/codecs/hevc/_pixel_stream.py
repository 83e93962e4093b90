"""A deliberately small, slow, independent HEVC intra stream writer for *testing* the pixel
kernels against FFmpeg's decoder (not the project's encoder, which lives in codecs/hevc).

It draws random coding decisions (CU quadtree, 2Nx2N/NxN, TU splits, luma and chroma modes,
levels restricted to the first 4x4 coefficient group of each TB), writes them as H.265
syntax (VPS/SPS/PPS/IDR slice, CABAC per 9.3.4 with the I-slice context init values) and
computes the reconstruction our kernels predict: intra.predict_intra, scalar_quant.dequantize,
transform.inverse_transform(_skip), scan orders. FFmpeg decoding the stream to exactly that
reconstruction proves the kernels (and this writer) right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codeclab.codecs.hevc.intra import chroma_mode_from, mode_syntax, most_probable_modes, predict_intra, reference_line
from codeclab.codecs.hevc.scalar_quant import chroma_qp, dequantize
from codeclab.codecs.hevc.scan import scan_idx_for, scan_order
from codeclab.codecs.hevc.transform import inverse_transform, inverse_transform_skip

# 9.3.2.2 init values, initType 0 (I slices)
INIT = {
    "sao_merge": [153],
    "sao_type": [200],
    "split_cu": [139, 141, 157],
    "part_mode": [184],
    "prev_intra_luma": [184],
    "intra_chroma": [63],
    "split_tf": [153, 138, 138],
    "cbf_luma": [111, 141],
    "cbf_chroma": [94, 138, 182, 154],
    "last_x": [110, 110, 124, 125, 140, 153, 125, 127, 140, 109, 111, 143, 127, 111, 79, 108, 123, 63],
    "last_y": [110, 110, 124, 125, 140, 153, 125, 127, 140, 109, 111, 143, 127, 111, 79, 108, 123, 63],
    "sig": [111, 111, 125, 110, 110, 94, 124, 108, 124, 107, 125, 141, 179, 153, 125, 107, 125, 141,
            179, 153, 125, 107, 125, 141, 179, 153, 125, 140, 139, 182, 182, 152, 136, 152, 136, 153,
            136, 139, 111, 136, 139, 111],
    "gt1": [140, 92, 137, 138, 140, 152, 138, 139, 153, 74, 149, 92, 139, 107, 122, 152, 140, 179,
            166, 182, 140, 227, 122, 197],
    "gt2": [138, 153, 136, 167, 152, 152],
    "ts": [139, 139],
}
RANGE_LPS = [
    (128, 176, 208, 240), (128, 167, 197, 227), (128, 158, 187, 216), (123, 150, 178, 205),
    (116, 142, 169, 195), (111, 135, 160, 185), (105, 128, 152, 175), (100, 122, 144, 166),
    (95, 116, 137, 158), (90, 110, 130, 150), (85, 104, 123, 142), (81, 99, 117, 135),
    (77, 94, 111, 128), (73, 89, 105, 122), (69, 85, 100, 116), (66, 80, 95, 110),
    (62, 76, 90, 104), (59, 72, 86, 99), (56, 69, 81, 94), (53, 65, 77, 89), (51, 62, 73, 85),
    (48, 59, 69, 80), (46, 56, 66, 76), (43, 53, 63, 72), (41, 50, 59, 69), (39, 48, 56, 65),
    (37, 45, 54, 62), (35, 43, 51, 59), (33, 41, 48, 56), (32, 39, 46, 53), (30, 37, 43, 50),
    (29, 35, 41, 48), (27, 33, 39, 45), (26, 31, 37, 43), (24, 30, 35, 41), (23, 28, 33, 39),
    (22, 27, 32, 37), (21, 26, 30, 35), (20, 24, 29, 33), (19, 23, 27, 31), (18, 22, 26, 30),
    (17, 21, 25, 28), (16, 20, 23, 27), (15, 19, 22, 25), (14, 18, 21, 24), (14, 17, 20, 23),
    (13, 16, 19, 22), (12, 15, 18, 21), (12, 14, 17, 20), (11, 14, 16, 19), (11, 13, 15, 18),
    (10, 12, 15, 17), (10, 12, 14, 16), (9, 11, 13, 15), (9, 11, 12, 14), (8, 10, 12, 14),
    (8, 9, 11, 13), (7, 9, 11, 12), (7, 9, 10, 12), (7, 8, 10, 11), (6, 8, 9, 11), (6, 7, 9, 10),
    (6, 7, 8, 9), (2, 2, 2, 2)]
TRANS_LPS = [0, 0, 1, 2, 2, 4, 4, 5, 6, 7, 8, 9, 9, 11, 11, 12, 13, 13, 15, 15, 16, 16, 18, 18,
             19, 19, 21, 21, 22, 22, 23, 24, 24, 25, 26, 26, 27, 27, 28, 29, 29, 30, 30, 30, 31,
             32, 32, 33, 33, 33, 34, 34, 35, 35, 35, 36, 36, 36, 37, 37, 37, 38, 38, 63]
CTX_IDX_MAP_4X4 = [0, 1, 4, 5, 2, 3, 4, 5, 6, 6, 8, 8, 7, 7, 8]


class Bits:
    def __init__(self) -> None:
        self.b: list[int] = []

    def u(self, v: int, n: int) -> None:
        self.b.extend((v >> (n - 1 - i)) & 1 for i in range(n))

    def ue(self, v: int) -> None:
        v += 1
        n = v.bit_length()
        self.u(0, n - 1)
        self.u(v, n)

    def se(self, v: int) -> None:
        self.ue(2 * v - 1 if v > 0 else -2 * v)

    def trailing(self) -> None:
        self.b.append(1)
        while len(self.b) % 8:
            self.b.append(0)

    def tobytes(self) -> bytes:
        assert len(self.b) % 8 == 0
        return bytes(int("".join(map(str, self.b[i:i + 8])), 2) for i in range(0, len(self.b), 8))


def nal(nal_type: int, rbsp: bytes) -> bytes:
    out = bytearray(b"\x00\x00\x00\x01" + bytes([nal_type << 1, 1]))
    zeros = 0
    for byte in rbsp:  # emulation prevention (7.4.2)
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class Cabac:
    """9.3.4 arithmetic encoder writing into a Bits object."""

    def __init__(self, bits: Bits, slice_qp: int) -> None:
        self.bits = bits
        self.low, self.range, self.outstanding, self.first = 0, 510, 0, True
        self.ctx: dict[str, list[list[int]]] = {}
        qp = min(max(slice_qp, 0), 51)
        for name, vals in INIT.items():
            states = []
            for v in vals:
                m, n = (v >> 4) * 5 - 45, ((v & 15) << 3) - 16
                pre = min(max(((m * qp) >> 4) + n, 1), 126)
                states.append([pre - 64, 1] if pre > 63 else [63 - pre, 0])
            self.ctx[name] = states

    def _put(self, b: int) -> None:
        if self.first:
            self.first = False
        else:
            self.bits.b.append(b)
        while self.outstanding:
            self.bits.b.append(1 - b)
            self.outstanding -= 1

    def _renorm(self) -> None:
        while self.range < 256:
            if self.low < 256:
                self._put(0)
            elif self.low >= 512:
                self.low -= 512
                self._put(1)
            else:
                self.low -= 256
                self.outstanding += 1
            self.range <<= 1
            self.low <<= 1

    def bin(self, name: str, idx: int, b: int) -> None:
        st = self.ctx[name][idx]
        lps = RANGE_LPS[st[0]][(self.range >> 6) & 3]
        self.range -= lps
        if b != st[1]:
            self.low += self.range
            self.range = lps
            if st[0] == 0:
                st[1] = 1 - st[1]
            st[0] = TRANS_LPS[st[0]]
        else:
            st[0] = min(st[0] + 1, 62)
        self._renorm()

    def bypass(self, b: int) -> None:
        self.low <<= 1
        if b:
            self.low += self.range
        if self.low >= 1024:
            self._put(1)
            self.low -= 1024
        elif self.low < 512:
            self._put(0)
        else:
            self.low -= 512
            self.outstanding += 1

    def bypass_bits(self, v: int, n: int) -> None:
        for i in range(n - 1, -1, -1):
            self.bypass((v >> i) & 1)

    def terminate(self, b: int) -> None:
        self.range -= 2
        if b:
            self.low += self.range
            self.range = 2
            self._renorm()
            self._put((self.low >> 9) & 1)
            self.bits.u(((self.low >> 7) & 3) | 1, 2)  # its last 1 is rbsp_stop_one_bit
        else:
            self._renorm()


@dataclass
class Picture:
    """Stream + the reconstruction our kernels predict + the block structure."""

    stream: bytes
    recon: list[np.ndarray]
    vert: np.ndarray
    hor: np.ndarray
    qp: int
    stats: dict = field(default_factory=dict)


def _ptl(b: Bits, bd: int) -> None:
    prof = 1 if bd == 8 else 2
    b.u(0, 2); b.u(0, 1); b.u(prof, 5)  # noqa: E702
    b.u(sum(1 << (31 - j) for j in ((1, 2) if prof == 1 else (2,))), 32)
    b.u(1, 1); b.u(0, 1); b.u(0, 1); b.u(1, 1)  # noqa: E702 progressive, frame only
    b.u(0, 43); b.u(0, 1)  # noqa: E702
    b.u(93, 8)  # level 3.1


def parameter_sets(w: int, h: int, bd: int, log2_ctb: int, tf_depth: int, strong: bool,
                   deblocking: bool, cb_off: int = 0, cr_off: int = 0, sao: bool = False,
                   ts: bool = False) -> bytes:
    vps = Bits()
    vps.u(0, 4); vps.u(1, 1); vps.u(1, 1); vps.u(0, 6); vps.u(0, 3); vps.u(1, 1)  # noqa: E702
    vps.u(0xFFFF, 16)
    _ptl(vps, bd)
    vps.u(1, 1); vps.ue(0); vps.ue(0); vps.ue(0)  # noqa: E702
    vps.u(0, 6); vps.ue(0); vps.u(0, 1); vps.u(0, 1)  # noqa: E702
    vps.trailing()
    sps = Bits()
    sps.u(0, 4); sps.u(0, 3); sps.u(1, 1)  # noqa: E702
    _ptl(sps, bd)
    sps.ue(0); sps.ue(1); sps.ue(w); sps.ue(h); sps.u(0, 1)  # noqa: E702
    sps.ue(bd - 8); sps.ue(bd - 8); sps.ue(4)  # noqa: E702
    sps.u(1, 1); sps.ue(0); sps.ue(0); sps.ue(0)  # noqa: E702
    sps.ue(0)  # min CB 8
    sps.ue(log2_ctb - 3)
    sps.ue(0)  # min TB 4
    sps.ue(min(log2_ctb, 5) - 2)  # max TB = Min(CTB, 32)
    sps.ue(0)  # max_transform_hierarchy_depth_inter
    sps.ue(tf_depth)  # ..._intra
    sps.u(0, 1); sps.u(0, 1); sps.u(int(sao), 1); sps.u(0, 1)  # noqa: E702 scaling, amp, sao, pcm
    sps.ue(0); sps.u(0, 1); sps.u(0, 1)  # noqa: E702
    sps.u(int(strong), 1)
    sps.u(0, 1); sps.u(0, 1)  # noqa: E702 vui, extension
    sps.trailing()
    pps = Bits()
    pps.ue(0); pps.ue(0); pps.u(0, 1); pps.u(0, 1); pps.u(0, 3); pps.u(0, 1); pps.u(0, 1)  # noqa: E702
    pps.ue(0); pps.ue(0); pps.se(0)  # noqa: E702 init_qp_minus26 = 0
    pps.u(0, 1); pps.u(int(ts), 1); pps.u(0, 1)  # noqa: E702 constrained intra, ts, cu_qp_delta
    pps.se(cb_off); pps.se(cr_off); pps.u(0, 1)  # noqa: E702
    pps.u(0, 1); pps.u(0, 1); pps.u(0, 1); pps.u(0, 1); pps.u(0, 1)  # noqa: E702
    pps.u(0, 1)  # loop filter across slices
    if deblocking:
        pps.u(0, 1)  # deblocking_filter_control_present_flag: defaults (on, offsets 0)
    else:
        pps.u(1, 1); pps.u(0, 1); pps.u(1, 1)  # noqa: E702 present, no override, disabled
    pps.u(0, 1); pps.u(0, 1); pps.ue(0); pps.u(0, 1); pps.u(0, 1)  # noqa: E702
    pps.trailing()
    return nal(32, vps.tobytes()) + nal(33, sps.tobytes()) + nal(34, pps.tobytes())


class _Writer:
    def __init__(self, rng, orig, bd, qp, log2_ctb, tf_depth, strong, cb_off, cr_off, level_scale,
                 cbf_p=(0.75, 0.6)):
        self.rng, self.bd, self.qp = rng, bd, qp
        self.orig = orig
        h, w = orig[0].shape
        self.h, self.w = h, w
        self.log2_ctb, self.tf_depth, self.strong = log2_ctb, tf_depth, strong
        self.rec = [np.zeros((h, w), np.int32), np.zeros((h // 2, w // 2), np.int32),
                    np.zeros((h // 2, w // 2), np.int32)]
        self.avail = [np.zeros(r.shape, bool) for r in self.rec]
        self.depth = np.zeros((h // 8, w // 8), np.int32)
        self.mode = np.full((h // 4, w // 4), 1, np.int32)  # IntraPredModeY per 4x4 (DC default)
        self.vert = np.zeros((h // 4, w // 4), bool)
        self.hor = np.zeros((h // 4, w // 4), bool)
        self.qpc = [qp, chroma_qp(qp, 1, cb_off, cr_off, bit_depth_c=bd),
                    chroma_qp(qp, 2, cb_off, cr_off, bit_depth_c=bd)]
        self.level_scale = level_scale
        self.cbf_p = cbf_p
        self.stats = {"tb": 0, "coded_tb": 0, "modes": set(), "sizes": set(), "bilinear32": 0}
        self.bits = Bits()
        self.sao = None  # SaoParams to signal, or None (SAO off in the SPS)
        self.ts = False  # transform_skip_enabled_flag

    # ---------------------------------------------------------------- syntax + recon
    def slice(self) -> bytes:
        b = self.bits
        b.u(1, 1); b.u(0, 1); b.ue(0); b.ue(2)  # noqa: E702
        if self.sao is not None:
            luma_on, chroma_on = self.sao.slice_flags()
            self.sao_on = (luma_on, chroma_on)
            b.u(int(luma_on), 1); b.u(int(chroma_on), 1)  # noqa: E702
        b.se(self.qp - 26)
        b.u(1, 1)  # byte_alignment
        while len(b.b) % 8:
            b.u(0, 1)
        self.cabac = Cabac(b, self.qp)
        ctb = 1 << self.log2_ctb
        rows, cols = -(-self.h // ctb), -(-self.w // ctb)
        for r in range(rows):
            for c in range(cols):
                if self.sao is not None and any(self.sao_on):
                    self.write_sao(r, c)
                self.quadtree(c * ctb, r * ctb, self.log2_ctb, 0)
                self.cabac.terminate(1 if (r, c) == (rows - 1, cols - 1) else 0)
        while len(b.b) % 8:
            b.b.append(0)
        return nal(19, b.tobytes())

    def write_sao(self, r, q):
        """7.3.8.3 sao(rx, ry) for the parameters in self.sao (merges as flagged)."""
        cab, p = self.cabac, self.sao
        if q > 0:
            cab.bin("sao_merge", 0, int(p.merge_left[r, q]))
        if r > 0 and not p.merge_left[r, q]:
            cab.bin("sao_merge", 0, int(p.merge_up[r, q]))
        if p.merge_left[r, q] or p.merge_up[r, q]:
            return
        cmax = (1 << (min(self.bd, 10) - 5)) - 1
        for c in range(3):
            if not self.sao_on[0 if c == 0 else 1]:
                continue
            t = int(p.type[r, q, c])
            if c < 2:
                cab.bin("sao_type", 0, int(t != 0))
                if t:
                    cab.bypass(int(t == 2))
            if t == 0:
                continue
            offs = [int(v) for v in p.offsets[r, q, c]]
            for v in offs:
                for _ in range(abs(v)):
                    cab.bypass(1)
                if abs(v) < cmax:
                    cab.bypass(0)
            if t == 1:
                for v in offs:
                    if v:
                        cab.bypass(int(v < 0))
                cab.bypass_bits(int(p.band_position[r, q, c]), 5)
            elif c < 2:
                cab.bypass_bits(int(p.eo_class[r, q, c]), 2)

    def quadtree(self, x0, y0, log2, depth):
        size = 1 << log2
        if x0 >= self.w or y0 >= self.h:
            return
        if x0 + size <= self.w and y0 + size <= self.h and log2 > 3:
            split = int(self.rng.random() < 0.55)
            cond_l = x0 > 0 and self.depth[y0 >> 3, (x0 - 1) >> 3] > depth
            cond_a = y0 > 0 and self.depth[(y0 - 1) >> 3, x0 >> 3] > depth
            self.cabac.bin("split_cu", int(cond_l) + int(cond_a), split)
        else:
            split = int(log2 > 3)
        if split:
            half = size // 2
            for dy in (0, half):
                for dx in (0, half):
                    self.quadtree(x0 + dx, y0 + dy, log2 - 1, depth + 1)
            return
        self.depth[y0 >> 3:(y0 + size) >> 3, x0 >> 3:(x0 + size) >> 3] = depth
        self.coding_unit(x0, y0, log2)

    def mpm(self, x, y):
        a = int(self.mode[y >> 2, (x - 1) >> 2]) if x > 0 else 1
        if y > 0 and (y - 1) >= ((y >> self.log2_ctb) << self.log2_ctb):
            b = int(self.mode[(y - 1) >> 2, x >> 2])
        else:
            b = 1
        return most_probable_modes(a, b)

    def coding_unit(self, x0, y0, log2):
        cab = self.cabac
        size = 1 << log2
        nxn = 0
        if log2 == 3:
            nxn = int(self.rng.random() < 0.4)
            cab.bin("part_mode", 0, 1 - nxn)
        pus = [(x0 + dx, y0 + dy) for dy in (0, size // 2) for dx in (0, size // 2)] if nxn else [(x0, y0)]
        psize = size // 2 if nxn else size
        modes, cands = [], []
        for (px, py) in pus:  # modes are set as we go: later PUs see earlier ones
            mode = int(self.rng.integers(0, 35))
            cand = self.mpm(px, py)
            self.mode[py >> 2:(py + psize) >> 2, px >> 2:(px + psize) >> 2] = mode
            modes.append(mode)
            cands.append(cand)
            self.stats["modes"].add(mode)
        syn = [mode_syntax(mode, cand) for mode, cand in zip(modes, cands)]
        for flag, _ in syn:
            cab.bin("prev_intra_luma", 0, int(flag))
        for flag, v in syn:
            if flag:
                cab.bypass(int(v > 0))
                if v > 0:
                    cab.bypass(int(v > 1))
            else:
                cab.bypass_bits(v, 5)
        icpm = int(self.rng.integers(0, 5))
        if icpm == 4:
            cab.bin("intra_chroma", 0, 0)
        else:
            cab.bin("intra_chroma", 0, 1)
            cab.bypass_bits(icpm, 2)
        self.cmode = chroma_mode_from(icpm, modes[0])
        self.cu_nxn = nxn
        self.transform_tree(x0, y0, x0, y0, log2, 0, 0, (1, 1), log2)

    def transform_tree(self, x0, y0, xb, yb, log2, tdepth, blk, parent_cbf_c, log2_cb):
        cab = self.cabac
        max_depth = self.tf_depth + self.cu_nxn
        max_tb = min(self.log2_ctb, 5)
        if log2 <= max_tb and log2 > 2 and tdepth < max_depth and not (self.cu_nxn and tdepth == 0):
            split = int(self.rng.random() < 0.5)
            cab.bin("split_tf", 5 - log2, split)
        else:
            split = int(log2 > max_tb or (self.cu_nxn and tdepth == 0))
        cbf_c = list(parent_cbf_c)
        if log2 > 2:
            for i in range(2):
                if tdepth == 0 or parent_cbf_c[i]:
                    cbf_c[i] = int(self.rng.random() < self.cbf_p[1])
                    cab.bin("cbf_chroma", tdepth, cbf_c[i])
                else:
                    cbf_c[i] = 0
        if split:
            half = 1 << (log2 - 1)
            for k, (dx, dy) in enumerate(((0, 0), (half, 0), (0, half), (half, half))):
                self.transform_tree(x0 + dx, y0 + dy, x0, y0, log2 - 1, tdepth + 1, k, cbf_c, log2_cb)
            return
        cbf_l = int(self.rng.random() < self.cbf_p[0])
        cab.bin("cbf_luma", 1 if tdepth == 0 else 0, cbf_l)
        # deblocking edges: every TU (and PU, inside the TUs here) boundary
        n = 1 << log2
        self.vert[y0 >> 2:(y0 + n) >> 2, x0 >> 2] = True
        self.hor[y0 >> 2, x0 >> 2:(x0 + n) >> 2] = True
        luma_mode = int(self.mode[y0 >> 2, x0 >> 2])
        lv = self.levels(log2) if cbf_l else None
        ts_l = False
        if lv is not None:
            ts_l = self.residual(lv, log2, 0, luma_mode)
        chroma_jobs = []
        if log2 > 2:
            chroma_jobs = [(x0 // 2, y0 // 2, log2 - 1, cbf_c)]
        elif blk == 3:
            chroma_jobs = [(xb // 2, yb // 2, 2, cbf_c)]
        clv = []
        for (cx, cy, cl, cf) in chroma_jobs:
            for c in (1, 2):
                lvc = self.levels(cl) if cf[c - 1] else None
                ts_c = False
                if lvc is not None:
                    ts_c = self.residual(lvc, cl, c, self.cmode)
                clv.append((c, cx, cy, cl, lvc, ts_c))
        # reconstruction in decoding order: this luma TB, then its chroma TBs
        self.reconstruct(0, x0, y0, log2, luma_mode, lv, ts_l)
        for (c, cx, cy, cl, lvc, ts_c) in clv:
            self.reconstruct(c, cx, cy, cl, self.cmode, lvc, ts_c)

    def levels(self, log2):
        """Random levels in the first 4x4 coefficient group (at least one non-zero)."""
        n = 1 << log2
        lv = np.zeros((n, n), np.int64)
        k = int(self.rng.integers(1, 17))
        pos = self.rng.choice(16, size=k, replace=False)
        mags = self.rng.geometric(0.35, size=k)
        big = self.rng.random(k) < 0.08
        mags = np.where(big, self.rng.integers(20, 400, k), mags) * self.level_scale
        signs = self.rng.choice([-1, 1], size=k)
        for p, m, s in zip(pos, mags, signs):
            lv[p // 4, p % 4] = int(m) * int(s)
        return lv

    def residual(self, lv, log2, c_idx, mode):
        cab = self.cabac
        skip = 0
        if self.ts and log2 == 2:
            skip = int(self.rng.random() < 0.5)
            cab.bin("ts", 1 if c_idx else 0, skip)
        scan_idx = scan_idx_for(mode, log2, c_idx)
        order = scan_order(2, scan_idx)  # positions inside the first (and only) group
        sig = [int(lv[y, x] != 0) for x, y in order]
        last = max(i for i in range(16) if sig[i])
        lx, ly = (int(v) for v in order[last])
        if scan_idx == 2:
            lx, ly = ly, lx
        if c_idx == 0:
            off, shift = 3 * (log2 - 2) + ((log2 - 1) >> 2), (log2 + 1) >> 2
        else:
            off, shift = 15, log2 - 2
        cmax = (log2 << 1) - 1
        for name, v in (("last_x", lx), ("last_y", ly)):
            for i in range(v):
                cab.bin(name, off + (i >> shift), 1)
            if v < cmax:
                cab.bin(name, off + (v >> shift), 0)
        for nn in range(last - 1, -1, -1):
            x, y = (int(v) for v in order[nn])
            if log2 == 2:
                sc = CTX_IDX_MAP_4X4[(y << 2) + x]
            elif x + y == 0:
                sc = 0
            else:  # prevCsbf = 0 (no other coded group), group (0, 0)
                sc = 1 if x + y < 3 else 0
                if c_idx == 0:
                    sc += (9 if scan_idx == 0 else 15) if log2 == 3 else 21
                else:
                    sc += 9 if log2 == 3 else 12
            cab.bin("sig", sc if c_idx == 0 else 27 + sc, sig[nn])
        vals = [int(lv[y, x]) for x, y in order]
        sig_pos = [nn for nn in range(15, -1, -1) if sig[nn]]
        g1ctx, g1 = 1, {}
        first_g1 = -1
        for k, nn in enumerate(sig_pos[:8]):
            flag = int(abs(vals[nn]) > 1)
            cab.bin("gt1", 4 * 0 + min(3, g1ctx) + (16 if c_idx else 0), flag)
            g1[nn] = flag
            if flag and first_g1 < 0:
                first_g1 = nn
            if g1ctx > 0:
                g1ctx = 0 if flag else g1ctx + 1
        g2 = {}
        if first_g1 >= 0:
            g2[first_g1] = int(abs(vals[first_g1]) > 2)
            cab.bin("gt2", 0 + (4 if c_idx else 0), g2[first_g1])
        for nn in sig_pos:
            cab.bypass(int(vals[nn] < 0))
        rice, num_sig = 0, 0
        for nn in sig_pos:
            base = 1 + g1.get(nn, 0) + g2.get(nn, 0)
            if base == ((3 if nn == first_g1 else 2) if num_sig < 8 else 1):
                rem = abs(vals[nn]) - base
                self.abs_remaining(rem, rice)
                if base + rem > 3 * (1 << rice):
                    rice = min(rice + 1, 4)
            num_sig += 1
        return bool(skip)

    def abs_remaining(self, v, rice):
        cab = self.cabac
        cmax = 4 << rice
        prefix = min(cmax, v)
        q = prefix >> rice
        for _ in range(q):
            cab.bypass(1)
        if prefix < cmax:
            cab.bypass(0)
            cab.bypass_bits(prefix & ((1 << rice) - 1), rice)
        else:
            s, k = v - cmax, rice + 1
            while s >= (1 << k):
                cab.bypass(1)
                s -= 1 << k
                k += 1
            cab.bypass(0)
            cab.bypass_bits(s, k)

    def reconstruct(self, c, x, y, log2, mode, lv, ts=False):
        self.stats["tb"] += 1
        self.stats["sizes"].add((c, log2))
        if c == 0 and log2 == 5 and self.strong and mode not in (1, 10, 26):
            ref = reference_line(self.rec[c], self.avail[c], x, y, log2, self.bd)
            thr = 1 << (self.bd - 5)  # 8.4.4.2.3 bi-linear condition, counted for coverage
            if abs(ref[64] + ref[128] - 2 * ref[96]) < thr and abs(ref[64] + ref[0] - 2 * ref[32]) < thr:
                self.stats["bilinear32"] += 1
        pred = predict_intra(self.rec[c], self.avail[c], x, y, log2, mode, c, self.bd, self.strong)
        n = 1 << log2
        if lv is not None:
            self.stats["coded_tb"] += 1
            d = dequantize(lv, self.qpc[c], log2, self.bd)
            if ts:
                self.stats["ts"] = self.stats.get("ts", 0) + 1
                r = inverse_transform_skip(d, log2, self.bd)
            else:
                r = inverse_transform(d, log2, c == 0 and log2 == 2, self.bd)
            pred = np.clip(pred + r, 0, (1 << self.bd) - 1)
        self.rec[c][y:y + n, x:x + n] = pred
        self.avail[c][y:y + n, x:x + n] = True


def random_picture(seed: int, w: int, h: int, bd: int = 8, qp: int = 30, log2_ctb: int = 5,
                   tf_depth: int = 1, strong: bool = True, deblocking: bool = False,
                   cb_off: int = 0, cr_off: int = 0, level_scale: int = 1,
                   cbf_p: tuple[float, float] = (0.75, 0.6), sao=None,
                   transform_skip: bool = False) -> Picture:
    """A random intra picture: its Annex-B stream and our predicted reconstruction."""
    rng = np.random.default_rng(seed)
    wr = _Writer(rng, [np.zeros((h, w))], bd, qp, log2_ctb, tf_depth, strong, cb_off, cr_off,
                 level_scale, cbf_p)
    wr.sao = sao
    wr.ts = transform_skip
    ps = parameter_sets(w, h, bd, log2_ctb, tf_depth, strong, deblocking, cb_off, cr_off,
                        sao is not None, transform_skip)
    stream = ps + wr.slice()
    return Picture(stream, wr.rec, wr.vert, wr.hor, qp, wr.stats)


def random_sao_params(seed: int, w: int, h: int, log2_ctb: int, bd: int):
    """Random legal SAO parameters for every CTB, merges included (copied as the syntax does)."""
    from codeclab.codecs.hevc.loopfilter import SaoParams, sao_max_offset

    rng = np.random.default_rng(seed)
    ctb = 1 << log2_ctb
    rows, cols = -(-h // ctb), -(-w // ctb)
    p = SaoParams(rows, cols)
    cmax = sao_max_offset(bd)
    for r in range(rows):
        for q in range(cols):
            if q > 0 and rng.random() < 0.2:
                p.merge_left[r, q] = True
            elif r > 0 and rng.random() < 0.2:
                p.merge_up[r, q] = True
            if p.merge_left[r, q] or p.merge_up[r, q]:
                rr, qq = (r, q - 1) if p.merge_left[r, q] else (r - 1, q)
                for arr in (p.type, p.offsets, p.band_position, p.eo_class):
                    arr[r, q] = arr[rr, qq]
                continue
            for c in range(3):
                t = int(p.type[r, q, 1]) if c == 2 else int(rng.integers(0, 3))
                p.type[r, q, c] = t
                a = rng.integers(0, cmax + 1, 4)
                if t == 2:
                    p.offsets[r, q, c] = [a[0], a[1], -a[2], -a[3]]
                    p.eo_class[r, q, c] = p.eo_class[r, q, 1] if c == 2 else rng.integers(0, 4)
                elif t == 1:
                    p.offsets[r, q, c] = a * rng.choice([-1, 1], 4)
                    p.band_position[r, q, c] = rng.integers(0, 32)
    return p
