"""In-loop filters: deblocking against FFmpeg's decoder (libx265 streams) and against a
slow transcription of H.265 8.7.2; SAO against a transcription of 8.7.3."""

from __future__ import annotations

import io

import numpy as np
import pytest

from codeclab.codecs.hevc.loopfilter import BETA_TABLE, TC_TABLE, deblock, mark_block_edges, new_edge_maps

# ---------------------------------------------------------------- FFmpeg / libx265 ----------


def _x265_stream(planes, qp, bd, cb_off=0, cr_off=0) -> bytes:
    """One all-intra picture with every CU 8x8 or 16x16 and TUs of at most 8x8, so every
    edge of the 8x8 grid is a TU boundary; constant QP (no AQ, ipratio 1), SAO off."""
    av = pytest.importorskip("av")
    h, w = planes[0].shape
    buf = io.BytesIO()
    out = av.open(buf, "w", format="hevc")
    params = (f"keyint=1:ctu=16:min-cu-size=8:max-tu-size=8:sao=0:aq-mode=0:ipratio=1:"
              f"cbqpoffs={cb_off}:crqpoffs={cr_off}:log-level=error")
    try:
        s = out.add_stream("libx265", rate=25, options={"qp": str(qp), "x265-params": params})
    except Exception as exc:  # pragma: no cover - depends on the FFmpeg build
        pytest.skip(f"libx265 unavailable: {exc}")
    fmt = "yuv420p" if bd == 8 else "yuv420p10le"
    s.width, s.height, s.pix_fmt = w, h, fmt
    frame = av.VideoFrame(w, h, fmt)
    dt = np.dtype(np.uint8) if bd == 8 else np.dtype("<u2")
    for i, p in enumerate(planes):
        frame.planes[i].update(np.ascontiguousarray(p.astype(dt)).tobytes())
    for pkt in list(s.encode(frame)) + list(s.encode()):
        out.mux(pkt)
    out.close()
    return buf.getvalue()


def _ffmpeg_decode(data: bytes, loop_filter: bool) -> list[np.ndarray]:
    import av

    with av.open(io.BytesIO(data), format="hevc") as c:
        st = c.streams.video[0]
        if not loop_filter:
            st.codec_context.options = {"skip_loop_filter": "all"}
        f = next(c.decode(st))
        dt = np.dtype(np.uint8) if f.format.name == "yuv420p" else np.dtype("<u2")
        out = []
        for i, pl in enumerate(f.planes):
            h, w = pl.height, pl.width
            a = np.frombuffer(bytes(pl), dtype=dt).reshape(h, pl.line_size // dt.itemsize)[:, :w]
            out.append(a.astype(np.int32))
        return out


def _test_picture(rng, h, w, bd):
    yy, xx = np.mgrid[0:h, 0:w]
    y = np.sin(xx / 7.0) * 60 + np.cos(yy / 5.0) * 40 + 128 + rng.normal(0, 6, (h, w))
    y[16:40, 30:60] += 40
    cb = np.sin(xx[::2, ::2] / 5.0) * 50 + 110 + rng.normal(0, 4, (h // 2, w // 2))
    cr = np.cos(yy[::2, ::2] / 4.0) * 50 + 140
    return [np.clip(np.rint(p * (1 << (bd - 8))), 0, (1 << bd) - 1) for p in (y, cb, cr)]


@pytest.mark.parametrize("bd", [8, 10])
@pytest.mark.parametrize("qp,cb_off,cr_off", [(22, 0, 0), (32, 0, 0), (37, 3, -2), (45, -4, 5),
                                              (51, 0, 0)])
def test_deblock_matches_ffmpeg(bd, qp, cb_off, cr_off):
    """FFmpeg decodes the same stream with and without its loop filter: our deblocking of
    the unfiltered picture must give its filtered picture exactly."""
    rng = np.random.default_rng(qp * 10 + bd)
    h, w = 64, 96
    data = _x265_stream(_test_picture(rng, h, w, bd), qp, bd, cb_off, cr_off)
    pre = _ffmpeg_decode(data, loop_filter=False)
    post = _ffmpeg_decode(data, loop_filter=True)
    vert, hor = new_edge_maps(h, w)
    for y in range(0, h, 8):
        for x in range(0, w, 8):
            mark_block_edges(vert, hor, x, y, 8, 8)
    ours = deblock(pre, (vert, hor), np.full((h // 4, w // 4), qp), bd,
                   cb_qp_offset=cb_off, cr_qp_offset=cr_off)
    assert sum(int((a != b).sum()) for a, b in zip(pre, post)) > 100  # the filter did work
    for c in range(3):
        assert np.array_equal(ours[c], post[c]), f"plane {c}: {(ours[c] != post[c]).sum()} differ"


# ---------------------------------------------------------------- spec transcription -------

QPC = {30: 29, 31: 30, 32: 31, 33: 32, 34: 33, 35: 33, 36: 34, 37: 34, 38: 35, 39: 35, 40: 36,
       41: 36, 42: 37, 43: 37}


def _clip3(lo, hi, v):
    return lo if v < lo else hi if v > hi else v


def _spec_luma_edge(s, bd, beta, tc):
    """8.7.2.5.3/.5.6/.5.7 on one 4-line segment; s(k, i) -> sample accessor pair."""
    get, put = s
    p = [[get(k, -1 - i) for i in range(4)] for k in range(4)]
    q = [[get(k, i) for i in range(4)] for k in range(4)]
    dp0 = abs(p[0][2] - 2 * p[0][1] + p[0][0])
    dp3 = abs(p[3][2] - 2 * p[3][1] + p[3][0])
    dq0 = abs(q[0][2] - 2 * q[0][1] + q[0][0])
    dq3 = abs(q[3][2] - 2 * q[3][1] + q[3][0])
    dpq0, dpq3 = dp0 + dq0, dp3 + dq3
    dp, dq, d = dp0 + dp3, dq0 + dq3, dpq0 + dpq3
    if d >= beta:
        return

    def dsam(k, dpq):
        return (dpq < (beta >> 2) and abs(p[k][3] - p[k][0]) + abs(q[k][0] - q[k][3]) < (beta >> 3)
                and abs(p[k][0] - q[k][0]) < ((5 * tc + 1) >> 1))

    de = 2 if dsam(0, 2 * dpq0) and dsam(3, 2 * dpq3) else 1
    dep = dp < ((beta + (beta >> 1)) >> 3)
    deq = dq < ((beta + (beta >> 1)) >> 3)
    mx = (1 << bd) - 1
    for k in range(4):
        p0, p1, p2, p3 = p[k]
        q0, q1, q2, q3 = q[k]
        if de == 2:
            new_p = [_clip3(p0 - 2 * tc, p0 + 2 * tc, (p2 + 2 * p1 + 2 * p0 + 2 * q0 + q1 + 4) >> 3),
                     _clip3(p1 - 2 * tc, p1 + 2 * tc, (p2 + p1 + p0 + q0 + 2) >> 2),
                     _clip3(p2 - 2 * tc, p2 + 2 * tc, (2 * p3 + 3 * p2 + p1 + p0 + q0 + 4) >> 3)]
            new_q = [_clip3(q0 - 2 * tc, q0 + 2 * tc, (p1 + 2 * p0 + 2 * q0 + 2 * q1 + q2 + 4) >> 3),
                     _clip3(q1 - 2 * tc, q1 + 2 * tc, (p0 + q0 + q1 + q2 + 2) >> 2),
                     _clip3(q2 - 2 * tc, q2 + 2 * tc, (p0 + q0 + q1 + 3 * q2 + 2 * q3 + 4) >> 3)]
        else:
            delta = (9 * (q0 - p0) - 3 * (q1 - p1) + 8) >> 4
            if abs(delta) >= tc * 10:
                continue
            delta = _clip3(-tc, tc, delta)
            new_p = [_clip3(0, mx, p0 + delta)]
            new_q = [_clip3(0, mx, q0 - delta)]
            if dep:
                dlt = _clip3(-(tc >> 1), tc >> 1, (((p2 + p0 + 1) >> 1) - p1 + delta) >> 1)
                new_p.append(_clip3(0, mx, p1 + dlt))
            if deq:
                dlt = _clip3(-(tc >> 1), tc >> 1, (((q2 + q0 + 1) >> 1) - q1 - delta) >> 1)
                new_q.append(_clip3(0, mx, q1 + dlt))
        for i, v in enumerate(new_p):
            put(k, -1 - i, v)
        for i, v in enumerate(new_q):
            put(k, i, v)


def spec_deblock(planes, vert, hor, qp, bd, cb_off=0, cr_off=0):
    """Whole-picture process: all vertical edges (luma and chroma), then horizontal ones."""
    out = [p.astype(np.int64).copy() for p in planes]
    h, w = planes[0].shape
    y_pl = out[0]
    for direction in ("V", "H"):
        # luma: edges on the 8x8 grid, segments of 4 lines
        for e in range(8, w if direction == "V" else h, 8):
            for seg in range(0, h if direction == "V" else w, 4):
                if direction == "V":
                    if not vert[seg // 4, e // 4]:
                        continue
                    qpp, qpq = qp[seg // 4, e // 4 - 1], qp[seg // 4, e // 4]

                    def get(k, i, e=e, seg=seg):
                        return int(y_pl[seg + k, e + i])

                    def put(k, i, v, e=e, seg=seg):
                        y_pl[seg + k, e + i] = v
                else:
                    if not hor[e // 4, seg // 4]:
                        continue
                    qpp, qpq = qp[e // 4 - 1, seg // 4], qp[e // 4, seg // 4]

                    def get(k, i, e=e, seg=seg):
                        return int(y_pl[e + i, seg + k])

                    def put(k, i, v, e=e, seg=seg):
                        y_pl[e + i, seg + k] = v
                qpl = (int(qpp) + int(qpq) + 1) >> 1
                beta = int(BETA_TABLE[_clip3(0, 51, qpl)]) * (1 << (bd - 8))
                tc = int(TC_TABLE[_clip3(0, 53, qpl + 2)]) * (1 << (bd - 8))
                _spec_luma_edge((get, put), bd, beta, tc)
        # chroma 4:2:0: edges where the chroma coordinate is a multiple of 8
        for c, off in ((1, cb_off), (2, cr_off)):
            pl = out[c]
            hc, wc = pl.shape
            for e in range(8, wc if direction == "V" else hc, 8):
                for seg in range(0, hc if direction == "V" else wc, 4):
                    ly, lx = (2 * seg, 2 * e) if direction == "V" else (2 * e, 2 * seg)
                    m = vert if direction == "V" else hor
                    if not m[ly // 4, lx // 4]:
                        continue
                    if direction == "V":
                        qpp, qpq = qp[ly // 4, lx // 4 - 1], qp[ly // 4, lx // 4]
                    else:
                        qpp, qpq = qp[ly // 4 - 1, lx // 4], qp[ly // 4, lx // 4]
                    qpi = ((int(qpp) + int(qpq) + 1) >> 1) + off
                    qpc = qpi if qpi < 30 else QPC.get(qpi, qpi - 6)
                    tc = int(TC_TABLE[_clip3(0, 53, qpc + 2)]) * (1 << (bd - 8))
                    for k in range(4):
                        if direction == "V":
                            idx = [(seg + k, e - 2), (seg + k, e - 1), (seg + k, e), (seg + k, e + 1)]
                        else:
                            idx = [(e - 2, seg + k), (e - 1, seg + k), (e, seg + k), (e + 1, seg + k)]
                        p1, p0, q0, q1 = (int(pl[i]) for i in idx)
                        delta = _clip3(-tc, tc, ((((q0 - p0) << 2) + p1 - q1 + 4) >> 3))
                        pl[idx[1]] = _clip3(0, (1 << bd) - 1, p0 + delta)
                        pl[idx[2]] = _clip3(0, (1 << bd) - 1, q0 - delta)
    return out


def _random_tree(rng, h, w):
    """Random quadtree of blocks (32 down to 4) marking edges, random QP per 16x16."""
    vert, hor = new_edge_maps(h, w)

    def split(x, y, s):
        if s > 4 and rng.random() < 0.6:
            for dy in (0, s // 2):
                for dx in (0, s // 2):
                    split(x + dx, y + dy, s // 2)
        else:
            mark_block_edges(vert, hor, x, y, s, s)

    for y in range(0, h, 32):
        for x in range(0, w, 32):
            split(x, y, 32)
    return vert, hor


@pytest.mark.parametrize("bd", [8, 10])
def test_deblock_matches_spec_transcription(bd):
    rng = np.random.default_rng(bd)
    h, w = 64, 64
    changed = 0
    for trial in range(4):
        vert, hor = _random_tree(rng, h, w)
        qp16 = rng.integers(-6 * (bd - 8) if trial else 20, 52, (h // 16, w // 16))
        qp = np.kron(qp16, np.ones((4, 4), dtype=int))
        base = _test_picture(rng, h, w, bd)
        # blockiness: offset each 8x8 block so strong, weak and no filtering all occur
        jump = np.kron(rng.integers(-6, 7, (h // 8, w // 8)), np.ones((8, 8))) * (1 << (bd - 8))
        planes = [np.clip(base[0] + jump, 0, (1 << bd) - 1).astype(np.int32),
                  base[1].astype(np.int32), base[2].astype(np.uint16)]
        ours = deblock(planes, (vert, hor), qp, bd, cb_qp_offset=trial - 2, cr_qp_offset=2 - trial)
        ref = spec_deblock(planes, vert, hor, qp, bd, trial - 2, 2 - trial)
        for c in range(3):
            assert np.array_equal(ours[c], ref[c])
        changed += int((ours[0] != planes[0]).sum())
    assert changed > 100


def test_deblock_leaves_unmarked_and_picture_edges():
    rng = np.random.default_rng(5)
    planes = [rng.integers(0, 256, (32, 32)), rng.integers(0, 256, (16, 16)),
              rng.integers(0, 256, (16, 16))]
    vert, hor = new_edge_maps(32, 32)
    out = deblock(planes, (vert, hor), np.full((8, 8), 40), 8)
    assert all(np.array_equal(a, b) for a, b in zip(out, planes))
    mark_block_edges(vert, hor, 0, 0, 32, 32)  # only picture edges marked
    out = deblock(planes, (vert, hor), np.full((8, 8), 40), 8)
    assert all(np.array_equal(a, b) for a, b in zip(out, planes))
    with pytest.raises(ValueError):
        deblock(planes, (vert, hor), np.full((4, 4), 40), 8)


# ---------------------------------------------------------------- SAO ----------------------

from codeclab.codecs.hevc.loopfilter import SAO_EDGE, SAO_OFF, SaoParams, sao_apply, sao_estimate, sao_max_offset  # noqa: E402


def spec_sao(planes, p, log2_ctb, bd):
    """8.7.3 transcribed: per CTB, per sample, reading the deblocked picture."""
    out = [pl.astype(np.int64).copy() for pl in planes]
    hpos = [(-1, 1), (0, 0), (-1, 1), (1, -1)]
    vpos = [(0, 0), (-1, 1), (-1, 1), (-1, 1)]
    for c, rec in enumerate(planes):
        h, w = rec.shape
        ctb = (1 << log2_ctb) >> (1 if c else 0)
        for r in range(p.type.shape[0]):
            for q in range(p.type.shape[1]):
                t = p.type[r, q, c]
                if t == SAO_OFF:
                    continue
                offset_val = [0] + [int(v) for v in p.offsets[r, q, c]]
                for y in range(r * ctb, min((r + 1) * ctb, h)):
                    for x in range(q * ctb, min((q + 1) * ctb, w)):
                        s = int(rec[y, x])
                        if t == SAO_EDGE:
                            cls = p.eo_class[r, q, c]
                            nb = [(x + hpos[cls][k], y + vpos[cls][k]) for k in range(2)]
                            if any(not (0 <= xx < w and 0 <= yy < h) for xx, yy in nb):
                                continue
                            edge_idx = 2 + sum(int(np.sign(s - int(rec[yy, xx]))) for xx, yy in nb)
                            if edge_idx in (0, 1, 2):
                                edge_idx = 0 if edge_idx == 2 else edge_idx + 1
                            v = s + offset_val[edge_idx]
                        else:
                            band_table = [0] * 32
                            for k in range(4):
                                band_table[(k + p.band_position[r, q, c]) & 31] = k + 1
                            v = s + offset_val[band_table[s >> (bd - 5)]]
                        out[c][y, x] = _clip3(0, (1 << bd) - 1, v)
    return out


def _random_sao(rng, rows, cols, bd):
    p = SaoParams(rows, cols)
    cmax = sao_max_offset(bd)
    for r in range(rows):
        for q in range(cols):
            for c in range(3):
                t = p.type[r, q, 1] if c == 2 else rng.integers(0, 3)
                p.type[r, q, c] = t
                a = rng.integers(0, cmax + 1, 4)
                if t == SAO_EDGE:
                    p.offsets[r, q, c] = [a[0], a[1], -a[2], -a[3]]
                    p.eo_class[r, q, c] = p.eo_class[r, q, 1] if c == 2 else rng.integers(0, 4)
                else:
                    p.offsets[r, q, c] = a * rng.choice([-1, 1], 4)
                    p.band_position[r, q, c] = rng.integers(0, 32)
    return p


@pytest.mark.parametrize("bd", [8, 10])
def test_sao_apply_matches_spec(bd):
    rng = np.random.default_rng(20 + bd)
    h, w, log2_ctb = 40, 56, 4  # partial CTBs at the right and bottom
    rows, cols = -(-h // 16), -(-w // 16)
    for _ in range(3):
        planes = [rng.integers(0, 1 << bd, (h, w)), rng.integers(0, 1 << bd, (h // 2, w // 2)),
                  rng.integers(0, 1 << bd, (h // 2, w // 2))]
        planes[0][:20] = planes[0][:20] // 64 * 64  # flat areas: the '== neighbour' categories
        p = _random_sao(rng, rows, cols, bd)
        ours = sao_apply(planes, p, log2_ctb, bd)
        ref = spec_sao(planes, p, log2_ctb, bd)
        for c in range(3):
            assert np.array_equal(ours[c], ref[c]), c


@pytest.mark.parametrize("bd", [8, 10])
def test_sao_statistics_match_a_numpy_count(bd):
    """The per-CTB edge and band statistics SAO decides on, against numpy's count of the
    same categories (8.7.3's edgeIdx, neighbours outside the picture: no category)."""
    from codeclab.codecs.hevc.loopfilter import _EO_DX, _EO_DY, _EO_MAP, _sao_stats_plane

    rng = np.random.default_rng(7 + bd)
    h, w, ctb = 40, 56, 16
    rows, cols = -(-h // ctb), -(-w // ctb)
    rec = rng.integers(0, 1 << bd, (h, w)).astype(np.int32)
    rec[:20] = rec[:20] // 64 * 64
    org = np.clip(rec + rng.integers(-9, 10, (h, w)), 0, (1 << bd) - 1).astype(np.int32)
    eo_cnt, eo_sum = np.zeros((rows, cols, 4, 5), np.int64), np.zeros((rows, cols, 4, 5), np.int64)
    bo_cnt, bo_sum = np.zeros((rows, cols, 32), np.int64), np.zeros((rows, cols, 32), np.int64)
    _sao_stats_plane(org, rec, ctb, bd, _EO_DX, _EO_DY, _EO_MAP, eo_cnt, eo_sum, bo_cnt, bo_sum)
    pad = np.pad(rec.astype(np.int64), 1, constant_values=-1)
    inside = np.pad(np.ones((h, w), bool), 1)
    d = org.astype(np.int64) - rec
    for c in range(4):
        (ax, bx), (ay, by) = _EO_DX[c], _EO_DY[c]
        na, nb = pad[1 + ay:1 + ay + h, 1 + ax:1 + ax + w], pad[1 + by:1 + by + h, 1 + bx:1 + bx + w]
        ok = inside[1 + ay:1 + ay + h, 1 + ax:1 + ax + w] & inside[1 + by:1 + by + h, 1 + bx:1 + bx + w]
        cat = _EO_MAP[2 + np.sign(rec - na) + np.sign(rec - nb)]
        for r in range(rows):
            for q in range(cols):
                win = (slice(r * ctb, (r + 1) * ctb), slice(q * ctb, (q + 1) * ctb))
                for k in range(1, 5):  # category 0 gets no offset (and no statistics)
                    m = ok[win] & (cat[win] == k)
                    assert eo_cnt[r, q, c, k] == m.sum() and eo_sum[r, q, c, k] == d[win][m].sum()
    band = rec >> (bd - 5)
    for r in range(rows):
        for q in range(cols):
            win = (slice(r * ctb, (r + 1) * ctb), slice(q * ctb, (q + 1) * ctb))
            assert np.array_equal(bo_cnt[r, q], np.bincount(band[win].ravel(), minlength=32))
            assert np.array_equal(bo_sum[r, q], np.bincount(band[win].ravel(), d[win].ravel(), 32))


def _sse(a, b):
    return int(((np.asarray(a, np.int64) - b) ** 2).sum())


@pytest.mark.parametrize("bd", [8, 10])
def test_sao_estimate_reduces_error_and_is_legal(bd):
    rng = np.random.default_rng(bd)
    h, w = 96, 128
    yy, xx = np.mgrid[0:h, 0:w]
    sc = 1 << (bd - 8)
    org = [np.clip((128 + 60 * np.sin(xx / 9) + rng.normal(0, 3, (h, w))) * sc, 0, (1 << bd) - 1),
           np.clip((120 + 30 * np.cos(yy[::2, ::2] / 5)) * sc, 0, (1 << bd) - 1),
           np.clip((130 + 20 * np.sin(xx[::2, ::2] / 3)) * sc, 0, (1 << bd) - 1)]
    org = [o.astype(np.int32) for o in org]
    # a 'reconstruction' with a systematic, SAO-correctable error (ringing-like + band bias)
    rec = [np.clip(o + (rng.integers(-3, 4, o.shape) + (o > 140 * sc) * 4) * sc, 0, (1 << bd) - 1)
           .astype(np.int32) for o in org]
    p0 = sao_estimate(org, rec, 5, bd, lambda_=0.0)
    out = sao_apply(rec, p0, 5, bd)
    for c in range(3):
        assert _sse(org[c], out[c]) < 0.9 * _sse(org[c], rec[c])
    cmax = sao_max_offset(bd)
    for p in (p0, sao_estimate(org, rec, 5, bd, lambda_=30.0 * sc * sc)):
        assert np.array_equal(p.type[..., 1], p.type[..., 2])
        edge = p.type[..., 1] == SAO_EDGE
        assert np.array_equal(p.eo_class[..., 1][edge], p.eo_class[..., 2][edge])
        assert np.all(np.abs(p.offsets) <= cmax)
        e = p.type == SAO_EDGE
        assert np.all(p.offsets[e][:, :2] >= 0) and np.all(p.offsets[e][:, 2:] <= 0)
        for r, q in zip(*np.nonzero(p.merge_left)):
            assert np.array_equal(p.offsets[r, q], p.offsets[r, q - 1])
            assert np.array_equal(p.type[r, q], p.type[r, q - 1])
        for r, q in zip(*np.nonzero(p.merge_up)):
            assert np.array_equal(p.offsets[r, q], p.offsets[r - 1, q])
    # a prohibitive lambda switches SAO off
    p_off = sao_estimate(org, rec, 5, bd, lambda_=1e12)
    assert not np.any(p_off.type) and p_off.slice_flags() == (False, False)


def test_sao_estimate_beats_alternatives_single_ctb():
    """lambda = 0 on one CTB: the chosen luma parameters give an SSE no worse than random
    legal alternatives of every type (the statistics and offset search are consistent)."""
    rng = np.random.default_rng(3)
    org = [rng.integers(60, 200, (16, 16)).astype(np.int32)]
    rec = [np.clip(org[0] + rng.integers(-6, 7, (16, 16)) + 2, 0, 255).astype(np.int32)]
    p = sao_estimate(org, rec, 4, 8, lambda_=0.0)
    best = _sse(org[0], sao_apply(rec, p, 4, 8)[0])
    for _ in range(300):
        alt = _random_sao(rng, 1, 1, 8)
        assert best <= _sse(org[0], sao_apply(rec, alt, 4, 8)[0])


@pytest.mark.parametrize("bd,qp,log2_ctb,offs", [(8, 30, 5, (0, 0)), (8, 45, 6, (4, -3)),
                                                  (10, 37, 4, (-2, 2)), (10, 51, 5, (0, 0))])
def test_deblock_matches_ffmpeg_on_random_trees(bd, qp, log2_ctb, offs):
    """Random CU/PU/TU trees from tests/codecs/hevc/_pixel_stream.py with deblocking enabled in the
    PPS: FFmpeg's output equals deblock() of our reconstruction with the writer's edges."""
    from ._pixel_stream import random_picture
    from .test_intra import ffmpeg_decode

    for seed in range(3):
        pic = random_picture(100 + seed, 96, 64, bd=bd, qp=qp, log2_ctb=log2_ctb, deblocking=True,
                             cb_off=offs[0], cr_off=offs[1])
        ours = deblock(pic.recon, (pic.vert, pic.hor), np.full(pic.vert.shape, qp), bd,
                       cb_qp_offset=offs[0], cr_qp_offset=offs[1])
        assert sum(int((a != b).sum()) for a, b in zip(ours, pic.recon)) > 0
        dec = ffmpeg_decode(pic.stream)
        for c in range(3):
            assert np.array_equal(dec[c], ours[c]), f"plane {c}: {(dec[c] != ours[c]).sum()} differ"


@pytest.mark.parametrize("bd,log2_ctb,deblocking", [(8, 5, True), (8, 6, True), (10, 5, True),
                                                     (8, 4, False), (10, 4, False), (8, 5, False)])
def test_sao_matches_ffmpeg(bd, log2_ctb, deblocking):
    """Random SAO parameters of every kind (band, 4 edge classes, merges, partial CTBs)
    signalled in streams from tests/codecs/hevc/_pixel_stream.py: FFmpeg's picture equals
    sao_apply(deblock(reconstruction)).

    Not covered: 16x16 CTBs with deblocking *and* SAO, where FFmpeg 8 differs from the
    spec's whole-picture order at a few chroma samples next to CTB corners (see report)."""
    from ._pixel_stream import random_picture, random_sao_params
    from .test_intra import ffmpeg_decode

    for seed in range(3):
        w, h = (96, 64) if seed else (72, 56)
        p = random_sao_params(seed + 7, w, h, log2_ctb, bd)
        pic = random_picture(seed, w, h, bd=bd, qp=37, log2_ctb=log2_ctb, deblocking=deblocking, sao=p)
        base = pic.recon
        if deblocking:
            base = deblock(pic.recon, (pic.vert, pic.hor), np.full(pic.vert.shape, 37), bd)
        ours = sao_apply(base, p, log2_ctb, bd)
        assert sum(int((a != b).sum()) for a, b in zip(ours, base)) > 0
        dec = ffmpeg_decode(pic.stream)
        for c in range(3):
            assert np.array_equal(dec[c], ours[c]), f"plane {c}: {(dec[c] != ours[c]).sum()} differ"


@pytest.mark.parametrize("bd", [8, 10])
def test_sao_estimate_signalled_through_ffmpeg(bd):
    """Encoder loop in miniature: deblock, estimate SAO against an 'original', signal the
    decision (merges included) and check FFmpeg applies exactly what sao_apply predicts,
    and that it brings the picture closer to the original."""
    from ._pixel_stream import random_picture
    from .test_intra import ffmpeg_decode

    w, h, log2_ctb, qp = 128, 64, 5, 32
    pic0 = random_picture(5, w, h, bd=bd, qp=qp, log2_ctb=log2_ctb, deblocking=True)
    base = deblock(pic0.recon, (pic0.vert, pic0.hor), np.full(pic0.vert.shape, qp), bd)
    rng = np.random.default_rng(bd)
    mx = (1 << bd) - 1
    # an 'original' the deblocked picture misses by a band-dependent bias and edge ringing
    orig = [np.clip(b + ((b >> (bd - 3)) % 3 - 1) * 2 * (1 << (bd - 8))
                    + rng.integers(-1, 2, b.shape), 0, mx) for b in base]
    p = sao_estimate(orig, base, log2_ctb, bd, lambda_=8.0 * 4 ** (bd - 8))
    assert np.any(p.type)
    pic = random_picture(5, w, h, bd=bd, qp=qp, log2_ctb=log2_ctb, deblocking=True, sao=p)
    for c in range(3):
        assert np.array_equal(pic.recon[c], pic0.recon[c])  # same decisions, SAO added
    ours = sao_apply(base, p, log2_ctb, bd)
    dec = ffmpeg_decode(pic.stream)
    for c in range(3):
        assert np.array_equal(dec[c], ours[c])
    assert sum(_sse(o, a) for o, a in zip(orig, ours)) < sum(_sse(o, b) for o, b in zip(orig, base))


def test_sao_ctb16_with_deblocking_ffmpeg_difference_is_confined():
    """Documents the one known disagreement: 16x16 CTBs + deblocking + SAO. FFmpeg's
    CTB-pipelined filters then differ from the spec order (deblock the whole picture, then
    SAO from it) at a few chroma samples on chroma CTB borders; luma is always exact.
    Diagnosis of one case: FFmpeg's edge-offset class of chroma (7, 7) is what the
    picture gives with only the *vertical* chroma edges deblocked (its SAO of CTB (0, 0)
    ran before the horizontal chroma edge y = 8 at columns 4..7 was filtered), and its
    output keeps that sample un-deblocked. Our deblocked picture alone matches FFmpeg
    everywhere, so this is FFmpeg's order, not the filters. An encoder that wants
    FFmpeg-exact pictures should use CTBs of 32 or 64 with SAO."""
    from ._pixel_stream import random_picture, random_sao_params
    from .test_intra import ffmpeg_decode

    bad = 0
    for seed in range(8):
        p = random_sao_params(seed + 7, 64, 64, 4, 8)
        pic = random_picture(seed, 64, 64, bd=8, qp=37, log2_ctb=4, deblocking=True, sao=p)
        base = deblock(pic.recon, (pic.vert, pic.hor), np.full(pic.vert.shape, 37), 8)
        ours = sao_apply(base, p, 4, 8)
        dec = ffmpeg_decode(pic.stream)
        assert np.array_equal(dec[0], ours[0])
        for c in (1, 2):
            for y, x in np.argwhere(dec[c] != ours[c]):
                bad += 1
                assert y % 8 in (0, 7) or x % 8 in (0, 7)
    assert bad < 20
