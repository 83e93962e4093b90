"""Intra prediction against a slow reference written from H.265 8.4.4.2.1-8.4.4.2.6 with the
spec's p[x][y] indexing, plus hand-computed cases."""

import numpy as np
import pytest

from codeclab.codecs.hevc.intra import chroma_mode_from, predict_all_modes, predict_intra, reference_line

ANG = {2: 32, 3: 26, 4: 21, 5: 17, 6: 13, 7: 9, 8: 5, 9: 2, 10: 0, 11: -2, 12: -5, 13: -9,
       14: -13, 15: -17, 16: -21, 17: -26, 18: -32, 19: -26, 20: -21, 21: -17, 22: -13, 23: -9,
       24: -5, 25: -2, 26: 0, 27: 2, 28: 5, 29: 9, 30: 13, 31: 17, 32: 21, 33: 26, 34: 32}
INV = {11: -4096, 12: -1638, 13: -910, 14: -630, 15: -482, 16: -390, 17: -315, 18: -256,
       19: -315, 20: -390, 21: -482, 22: -630, 23: -910, 24: -1638, 25: -4096}


def spec_predict(rec, av, x0, y0, n, mode, c_idx, bd, sis=True):
    """Literal transcription; returns [y, x] array."""
    h, w = rec.shape
    coords = [(-1, y) for y in range(2 * n - 1, -2, -1)] + [(x, -1) for x in range(0, 2 * n)]
    p, avail = {}, {}
    for (x, y) in coords:
        xx, yy = x0 + x, y0 + y
        avail[(x, y)] = 0 <= xx < w and 0 <= yy < h and bool(av[yy, xx])
        if avail[(x, y)]:
            p[(x, y)] = int(rec[yy, xx])
    # 8.4.4.2.2
    if not any(avail.values()):
        for c in coords:
            p[c] = 1 << (bd - 1)
    else:
        if not avail[(-1, 2 * n - 1)]:
            for c in coords:  # search order: up the left column, then right along the top
                if avail[c]:
                    p[(-1, 2 * n - 1)] = p[c]
                    break
        for y in range(2 * n - 2, -2, -1):
            if not avail[(-1, y)]:
                p[(-1, y)] = p[(-1, y + 1)]
        for x in range(0, 2 * n):
            if not avail[(x, -1)]:
                p[(x, -1)] = p[(x - 1, -1)]
    # 8.4.4.2.3
    if c_idx == 0:
        if mode == 1 or n == 4:
            flag = False
        else:
            thres = {8: 7, 16: 1, 32: 0}[n]
            flag = min(abs(mode - 26), abs(mode - 10)) > thres
        if flag:
            pf = {}
            bi = (sis and n == 32
                  and abs(p[(-1, -1)] + p[(2 * n - 1, -1)] - 2 * p[(n - 1, -1)]) < (1 << (bd - 5))
                  and abs(p[(-1, -1)] + p[(-1, 2 * n - 1)] - 2 * p[(-1, n - 1)]) < (1 << (bd - 5)))
            if bi:
                pf[(-1, -1)] = p[(-1, -1)]
                for y in range(63):
                    pf[(-1, y)] = ((63 - y) * p[(-1, -1)] + (y + 1) * p[(-1, 63)] + 32) >> 6
                pf[(-1, 63)] = p[(-1, 63)]
                for x in range(63):
                    pf[(x, -1)] = ((63 - x) * p[(-1, -1)] + (x + 1) * p[(63, -1)] + 32) >> 6
                pf[(63, -1)] = p[(63, -1)]
            else:
                pf[(-1, -1)] = (p[(-1, 0)] + 2 * p[(-1, -1)] + p[(0, -1)] + 2) >> 2
                for y in range(2 * n - 1):
                    pf[(-1, y)] = (p[(-1, y + 1)] + 2 * p[(-1, y)] + p[(-1, y - 1)] + 2) >> 2
                pf[(-1, 2 * n - 1)] = p[(-1, 2 * n - 1)]
                for x in range(2 * n - 1):
                    pf[(x, -1)] = (p[(x - 1, -1)] + 2 * p[(x, -1)] + p[(x + 1, -1)] + 2) >> 2
                pf[(2 * n - 1, -1)] = p[(2 * n - 1, -1)]
            p = pf
    pred = np.zeros((n, n), dtype=np.int64)  # pred[y, x] = predSamples[x][y]
    k = n.bit_length() - 1
    clip = lambda v: min(max(v, 0), (1 << bd) - 1)  # noqa: E731
    if mode == 0:
        for x in range(n):
            for y in range(n):
                pred[y, x] = ((n - 1 - x) * p[(-1, y)] + (x + 1) * p[(n, -1)]
                              + (n - 1 - y) * p[(x, -1)] + (y + 1) * p[(-1, n)] + n) >> (k + 1)
        return pred
    if mode == 1:
        dc = (sum(p[(x, -1)] for x in range(n)) + sum(p[(-1, y)] for y in range(n)) + n) >> (k + 1)
        pred[:] = dc
        if c_idx == 0 and n < 32:
            pred[0, 0] = (p[(-1, 0)] + 2 * dc + p[(0, -1)] + 2) >> 2
            for x in range(1, n):
                pred[0, x] = (p[(x, -1)] + 3 * dc + 2) >> 2
            for y in range(1, n):
                pred[y, 0] = (p[(-1, y)] + 3 * dc + 2) >> 2
        return pred
    a = ANG[mode]
    ref = {}
    if mode >= 18:
        for x in range(n + 1):
            ref[x] = p[(-1 + x, -1)]
        if a < 0:
            if (n * a) >> 5 < -1:
                for x in range((n * a) >> 5, 0):
                    ref[x] = p[(-1, -1 + ((x * INV[mode] + 128) >> 8))]
        else:
            for x in range(n + 1, 2 * n + 1):
                ref[x] = p[(-1 + x, -1)]
        for x in range(n):
            for y in range(n):
                i_idx, i_fact = ((y + 1) * a) >> 5, ((y + 1) * a) & 31
                if i_fact:
                    pred[y, x] = ((32 - i_fact) * ref[x + i_idx + 1] + i_fact * ref[x + i_idx + 2] + 16) >> 5
                else:
                    pred[y, x] = ref[x + i_idx + 1]
        if mode == 26 and c_idx == 0 and n < 32:
            for y in range(n):
                pred[y, 0] = clip(p[(0, -1)] + ((p[(-1, y)] - p[(-1, -1)]) >> 1))
    else:
        for x in range(n + 1):
            ref[x] = p[(-1, -1 + x)]
        if a < 0:
            if (n * a) >> 5 < -1:
                for x in range((n * a) >> 5, 0):
                    ref[x] = p[(-1 + ((x * INV[mode] + 128) >> 8), -1)]
        else:
            for x in range(n + 1, 2 * n + 1):
                ref[x] = p[(-1, -1 + x)]
        for x in range(n):
            for y in range(n):
                i_idx, i_fact = ((x + 1) * a) >> 5, ((x + 1) * a) & 31
                if i_fact:
                    pred[y, x] = ((32 - i_fact) * ref[y + i_idx + 1] + i_fact * ref[y + i_idx + 2] + 16) >> 5
                else:
                    pred[y, x] = ref[y + i_idx + 1]
        if mode == 10 and c_idx == 0 and n < 32:
            for x in range(n):
                pred[0, x] = clip(p[(-1, 0)] + ((p[(x, -1)] - p[(-1, -1)]) >> 1))
    return pred


def _scene(rng, bd, h=96, w=96, smooth=False):
    if smooth:  # gentle gradient so the 32x32 strong-smoothing test passes sometimes
        yy, xx = np.mgrid[0:h, 0:w]
        rec = (yy * 2 + xx + rng.integers(0, 2, (h, w))) * (1 << (bd - 8))
    else:
        rec = rng.integers(0, 1 << bd, (h, w))
    return rec.astype(np.int32)


AVAIL_PATTERNS = ["all", "none", "top_only", "left_only", "partial"]


def _avail(pattern, shape, x0, y0, n, rng):
    av = np.zeros(shape, dtype=bool)
    if pattern == "all":
        av[:y0, :] = True
        av[y0:, :x0] = True
    elif pattern == "top_only":
        av[:y0, :] = True
    elif pattern == "left_only":
        av[:, :x0] = True
    elif pattern == "partial":  # z-scan like: above up to top-right n, left down to n
        av[:y0, : x0 + n + rng.integers(0, n + 1)] = True
        av[: y0 + rng.integers(0, 2 * n + 1), :x0] = True
    return av


@pytest.mark.parametrize("bd", [8, 10])
@pytest.mark.parametrize("log2", [2, 3, 4, 5])
def test_luma_all_modes_match_spec(bd, log2):
    rng = np.random.default_rng(100 * bd + log2)
    n = 1 << log2
    for pattern in AVAIL_PATTERNS:
        for smooth in (False, True):
            rec = _scene(rng, bd, smooth=smooth)
            x0 = y0 = 32
            av = _avail(pattern, rec.shape, x0, y0, n, rng)
            allp = predict_all_modes(rec, av, x0, y0, log2, 0, bd)
            for mode in range(35):
                ref = spec_predict(rec, av, x0, y0, n, mode, 0, bd)
                got = predict_intra(rec, av, x0, y0, log2, mode, 0, bd)
                assert np.array_equal(got, ref), (pattern, smooth, mode)
                assert np.array_equal(allp[mode], ref)


@pytest.mark.parametrize("log2", [2, 3, 4])
def test_chroma_and_picture_edges(log2):
    rng = np.random.default_rng(log2)
    n = 1 << log2
    rec = _scene(rng, 8, 40, 40).astype(np.uint8)
    for (x0, y0) in [(0, 0), (0, 16), (16, 0), (40 - n, 40 - n), (24, 8)]:
        av = np.zeros(rec.shape, bool)
        av[:y0, :] = True
        av[y0:y0 + n, :x0] = True
        for mode in range(35):
            for c_idx in (1, 2):
                assert np.array_equal(predict_intra(rec, av, x0, y0, log2, mode, c_idx, 8),
                                      spec_predict(rec, av, x0, y0, n, mode, c_idx, 8))
            assert np.array_equal(predict_intra(rec, av, x0, y0, log2, mode, 0, 8, False),
                                  spec_predict(rec, av, x0, y0, n, mode, 0, 8, False))


def test_strong_smoothing_exercised():
    """A smooth 32x32 neighbourhood takes the bi-linear path; check it differs from [1 2 1]."""
    yy, xx = np.mgrid[0:96, 0:96]
    rec = (yy + xx).astype(np.int32)
    rec[31, 40] += 3  # small bump that [1 2 1] keeps but bi-linear interpolation removes
    av = np.zeros(rec.shape, bool)
    av[:32, :] = True
    av[:, :32] = True
    on = predict_intra(rec, av, 32, 32, 5, 0, 0, 8, True)
    off = predict_intra(rec, av, 32, 32, 5, 0, 0, 8, False)
    assert not np.array_equal(on, off)
    assert np.array_equal(on, spec_predict(rec, av, 32, 32, 32, 0, 0, 8, True))


def test_nothing_available_gives_mid_grey():
    for bd in (8, 10):
        rec = np.zeros((16, 16), np.int32)
        av = np.zeros((16, 16), bool)
        line = reference_line(rec, av, 0, 0, 3, bd)
        assert np.all(line == 1 << (bd - 1))
        for mode in range(35):
            assert np.all(predict_intra(rec, av, 0, 0, 3, mode, 0, bd) == 1 << (bd - 1))


def test_hand_computed_4x4():
    rec = np.zeros((8, 8), np.int32)
    av = np.zeros((8, 8), bool)
    rec[3, 3] = 50                 # corner p[-1][-1]
    rec[3, 4:12 - 4] = [10, 20, 30, 40]  # top p[0..3][-1]; top-right unavailable -> 40
    rec[4:8, 3] = [60, 70, 80, 90]  # left p[-1][0..3]; bottom-left outside picture -> 90
    av[3, 3:8] = True
    av[4:8, 3] = True
    # DC: (10+20+30+40+60+70+80+90 + 4) >> 3 = 50; edge filter luma
    dc = predict_intra(rec, av, 4, 4, 2, 1, 0, 8)
    assert dc[1:, 1:].tolist() == [[50] * 3] * 3
    assert dc[0, 0] == (60 + 100 + 10 + 2) >> 2
    assert dc[0, 1:].tolist() == [(v + 150 + 2) >> 2 for v in (20, 30, 40)]
    assert dc[1:, 0].tolist() == [(v + 150 + 2) >> 2 for v in (70, 80, 90)]
    # chroma DC: no edge filter
    assert np.all(predict_intra(rec, av, 4, 4, 2, 1, 1, 8) == 50)
    # planar sample (0,0): (3*60 + 1*40 + 3*10 + 1*90 + 4) >> 3 (p[4][-1] = 40 substituted)
    pl = predict_intra(rec, av, 4, 4, 2, 0, 0, 8)
    assert pl[0, 0] == (3 * 60 + 40 + 3 * 10 + 90 + 4) >> 3
    # vertical (26): columns copy the top, first column boundary-filtered and clipped
    v = predict_intra(rec, av, 4, 4, 2, 26, 0, 8)
    assert v[:, 1:].tolist() == [[20, 30, 40]] * 4
    assert v[:, 0].tolist() == [min(max(10 + ((l - 50) >> 1), 0), 255) for l in (60, 70, 80, 90)]
    # horizontal (10) for chroma: rows copy the left, no filter
    hz = predict_intra(rec, av, 4, 4, 2, 10, 1, 8)
    assert hz.tolist() == [[60] * 4, [70] * 4, [80] * 4, [90] * 4]
    # mode 34 (angle 32): pred[x][y] = ref[x + y + 2] = p[x+y+1][-1]
    d = predict_intra(rec, av, 4, 4, 2, 34, 0, 8)
    top = [10, 20, 30, 40, 40, 40, 40, 40]
    assert d.tolist() == [[top[x + y + 1] for x in range(4)] for y in range(4)]


def test_boundary_clipping():
    for bd in (8, 10):
        mx = (1 << bd) - 1
        rec = np.zeros((8, 8), np.int32)
        av = np.zeros((8, 8), bool)
        av[3, 3:] = True
        av[4:, 3] = True
        rec[3, 3] = 0
        rec[3, 4:] = mx
        rec[4:, 3] = mx  # left - corner large positive: top + (mx >> 1) overflows -> clipped
        v = predict_intra(rec, av, 4, 4, 2, 26, 0, bd)
        assert np.all(v[:, 0] == mx)
        rec[3, 3] = mx
        rec[4:, 3] = 0
        rec[3, 4:] = 0  # 0 + ((mx - mx) >> 1) ... make negative: top 0, left 0, corner max
        h = predict_intra(rec, av, 4, 4, 2, 10, 0, bd)
        assert np.all(h[0, :] == 0)


def test_mpm_and_mode_syntax():
    from codeclab.codecs.hevc.intra import mode_syntax, most_probable_modes

    assert most_probable_modes(1, 1) == (0, 1, 26) and most_probable_modes(0, 0) == (0, 1, 26)
    assert most_probable_modes(2, 2) == (2, 33, 3)  # 2 + (31 % 32), 2 + (1 % 32)
    assert most_probable_modes(34, 34) == (34, 33, 3)
    assert most_probable_modes(10, 26) == (10, 26, 0)
    assert most_probable_modes(0, 26) == (0, 26, 1) and most_probable_modes(0, 1) == (0, 1, 26)
    for a in range(35):
        for b in range(35):
            mpm = most_probable_modes(a, b)
            assert len(set(mpm)) == 3
            rems = set()
            for m in range(35):
                flag, v = mode_syntax(m, mpm)
                if flag:
                    assert mpm[v] == m
                else:  # decoder side of 8.4.2: sort, then step over the candidates
                    x = v
                    for c in sorted(mpm):
                        if x >= c:
                            x += 1
                    assert x == m and 0 <= v < 32
                    rems.add(v)
            assert rems == set(range(32))


def test_chroma_mode_derivation():
    assert [chroma_mode_from(i, 5) for i in range(5)] == [0, 26, 10, 1, 5]
    assert chroma_mode_from(0, 0) == 34 and chroma_mode_from(1, 26) == 34
    assert chroma_mode_from(2, 10) == 34 and chroma_mode_from(3, 1) == 34
    assert chroma_mode_from(4, 34) == 34


# ---------------------------------------------------------------- FFmpeg ---------------------

PIXEL_PATH_CONFIGS = [
    dict(w=64, h=64, bd=8, qp=30),
    dict(w=72, h=56, bd=8, qp=22, log2_ctb=4),  # partial CTBs: boundary-forced splits
    dict(w=64, h=64, bd=10, qp=-5),  # negative QpY (QpBdOffset)
    dict(w=64, h=48, bd=10, qp=40, strong=False, tf_depth=2),
    dict(w=96, h=64, bd=8, qp=45, log2_ctb=6, cb_off=4, cr_off=-3),
    dict(w=64, h=64, bd=8, qp=2, level_scale=30),  # coefficient clipping at 16 bits
    dict(w=128, h=64, bd=8, qp=30, log2_ctb=6, tf_depth=0, cbf_p=(0.1, 0.1)),  # smooth: bi-linear 32x32
    dict(w=128, h=64, bd=10, qp=30, log2_ctb=6, tf_depth=0, cbf_p=(0.1, 0.1)),
    dict(w=64, h=64, bd=8, qp=27, tf_depth=2, transform_skip=True),  # 4x4 transform skip
    dict(w=64, h=64, bd=10, qp=12, tf_depth=2, transform_skip=True),
]


def ffmpeg_decode(data: bytes) -> list[np.ndarray]:
    av = pytest.importorskip("av")
    import io

    with av.open(io.BytesIO(data), format="hevc") as c:
        f = next(c.decode(c.streams.video[0]))
        dt = np.dtype(np.uint8) if f.format.name == "yuv420p" else np.dtype("<u2")
        return [np.frombuffer(bytes(pl), dtype=dt).reshape(pl.height, pl.line_size // dt.itemsize)
                [:, :pl.width].astype(np.int32) for pl in f.planes]


@pytest.mark.parametrize("cfg", PIXEL_PATH_CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_ffmpeg_decodes_our_reconstruction(cfg):
    """Streams with random CU/PU/TU trees, all 35 luma modes, the 5 chroma modes and random
    levels, written by tests/codecs/hevc/_pixel_stream.py: FFmpeg's decoded picture must equal the
    reconstruction computed with predict_intra, dequantize, inverse_transform(_skip) and the
    scans (scan_idx_for chooses the scan the syntax uses, so a wrong scan breaks decoding)."""
    from ._pixel_stream import random_picture

    bilinear = 0
    for seed in range(3):
        pic = random_picture(seed * 10 + PIXEL_PATH_CONFIGS.index(cfg), **cfg)
        dec = ffmpeg_decode(pic.stream)
        for c in range(3):
            assert np.array_equal(dec[c], pic.recon[c]), \
                f"seed {seed} plane {c}: {(dec[c] != pic.recon[c]).sum()} samples differ"
        assert pic.stats["coded_tb"] > 0
        bilinear += pic.stats["bilinear32"]
        if cfg.get("transform_skip"):
            assert pic.stats.get("ts", 0) > 0
    if cfg.get("cbf_p"):
        assert bilinear > 0  # the strong-smoothing branch really ran
