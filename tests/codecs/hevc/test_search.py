"""The compiled search of the HEVC intra encoder (codecs/hevc/search.py, tb_coding.py,
picture_state.py, ctu_syntax.py).

- every preset x quantizer {sq, rdoq} x 8/10-bit gives streams FFmpeg decodes bit-exactly
  to our reconstruction (small pictures, filters and transform skip on);
- the RD presets never lose in the picture's own RD cost J = SSE + lambda * bits against the
  SATD decisions (filters off, so SSE is that of what the decisions produce);
- the search leaves no trace: the contexts it carries to the end of the picture are those
  the slice writer ends with (SAO off), so every trial's contexts were undone;
- save / restore of a region undoes what coding a TB changes in the picture state;
- the quantizer is handed the carried CABAC contexts, not the slice's initial ones; a
  Python quantizer (the EXTERNAL path) with RDOQ's rules gives the compiled RDOQ's bytes,
  and its errors reach the caller;
- the RD search's batch pricer counts what the slice writer writes (estimate mode), and the
  estimate-mode writer counts within 1.5 % of the slice data it really writes.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from codeclab.base.errors import UsageError
from codeclab.bitstream.cabac import E_FRAC, FRAC_ONE, CabacWriter, encode_bin
from codeclab.codecs.hevc import tables as T
from codeclab.codecs.hevc.encoder import PictureEncoder
from codeclab.codecs.hevc.params import StreamParams
from codeclab.codecs.hevc.quantizer import EncoderQuantizer, RDOQQuantizer, extract_rate_state
from codeclab.codecs.hevc.search import PRESETS

from .test_hevc_decode import ffmpeg_decode, picture


def _params(w: int, h: int, bd: int, qp: int, *, ctb: int = 5, ts: bool = False, filters: bool = True,
            tu: int = 1) -> StreamParams:
    return StreamParams(w, h, bd, ctb, tu, qp, Fraction(25), True, ts, filters, filters)


def _check_exact(pic) -> None:
    frames, bad = ffmpeg_decode(pic.data)
    assert not bad and len(frames) == 1, bad[:3]
    for c in range(3):
        assert np.array_equal(frames[0][c], pic.recon[c]), f"component {c} differs"


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("quant", ["sq", "rdoq"])
@pytest.mark.parametrize("bd", [8, 10])
def test_presets_decode_bit_exact(preset, quant, bd):
    for k, (content, qp, size, ctb, ts) in enumerate((("natural", 27, (72, 48), 5, True),
                                                      ("noise", 37, (64, 64), 6, False),
                                                      ("stripes", 12, (40, 24), 4, True))):
        planes = picture(content, bd, *size, seed=k)
        p = _params(*size, bd, qp, ctb=ctb, ts=ts)
        pic = PictureEncoder(p, EncoderQuantizer(quant, qp), preset=preset).encode(planes)
        _check_exact(pic)


def test_deeper_transform_trees_decode_bit_exact():
    for tu, qp in ((0, 32), (2, 22), (3, 37)):
        planes = picture("natural", 8, 64, 64)
        pic = PictureEncoder(_params(64, 64, 8, qp, ctb=6, tu=tu), EncoderQuantizer("rdoq", qp),
                             preset="slow").encode(planes)
        _check_exact(pic)


@pytest.mark.parametrize("qp", [22, 37])
def test_rd_presets_never_lose_in_rd_cost(qp):
    """J = SSE(Y) + wc * SSE(U, V) + lambda * bits of the whole picture: the RD search
    (medium, slow) is at most the SATD decisions' (fast), on three windows of a photograph."""
    from codeclab.codecs.hevc.lambdas import chroma_weight

    wc = chroma_weight(qp)
    for y0, x0 in ((0, 0), (64, 128), (128, 256)):
        nat = picture("natural", 8, 416, 240)
        planes = [nat[0][y0:y0 + 64, x0:x0 + 96], nat[1][y0 // 2:y0 // 2 + 32, x0 // 2:x0 // 2 + 48],
                  nat[2][y0 // 2:y0 // 2 + 32, x0 // 2:x0 // 2 + 48]]
        j = {}
        for preset in ("fast", "medium", "slow"):
            enc = PictureEncoder(_params(96, 64, 8, qp, filters=False), EncoderQuantizer("sq", qp),
                                 preset=preset)
            pic = enc.encode(planes)
            d = sum((1.0 if c == 0 else wc) * float(((pic.recon[c].astype(np.int64) - planes[c]) ** 2).sum())
                    for c in range(3))
            j[preset] = d + enc.lambdas.rd * pic.bits
        assert j["medium"] <= j["fast"] * 1.0005, j
        assert j["slow"] <= j["fast"] * 1.0005, j


@pytest.mark.parametrize("preset", ["medium", "slow"])
def test_search_leaves_no_trace(preset):
    """Every trial's contexts are undone: what the RD search carries to the end of the
    picture is exactly what the slice writer (estimate mode, SAO off) ends with."""
    for bd, qp, content, size, quant in ((8, 27, "natural", (96, 64), "rdoq"),
                                         (10, 32, "noise", (72, 40), "sq")):
        planes = picture(content, bd, *size, seed=qp)
        p = _params(*size, bd, qp, ctb=6 if bd == 8 else 5, filters=False)
        enc = PictureEncoder(p, EncoderQuantizer(quant, qp), preset=preset)
        st, carried = enc.search(planes)
        written = enc.write_slice(st, estimate=True)
        assert np.array_equal(carried, written.ctx)


def test_region_save_restore_undoes_a_tb():
    """restore_region puts back everything coding a TB changes (reconstruction,
    availability, levels, cbf and transform-skip maps, luma modes)."""
    from codeclab.bitstream.cabac import init_contexts
    from codeclab.codecs.hevc.picture_state import restore_region, save_region
    from codeclab.codecs.hevc.tb_coding import code_tb

    planes = picture("noise", 8, 64, 64, seed=3)
    enc = PictureEncoder(_params(64, 64, 8, 27, ts=True), EncoderQuantizer("sq", 27), preset="medium")
    st, _ = enc.search(planes)
    snap = save_region(st, 16, 16, 4)
    before = [np.array(a) for a in st.rec + st.av + st.lv + st.cbf + st.ts + (st.mode, st.tdepth)]
    ctx = init_contexts(T.INIT_VALUES_I, 27)
    for c, x, y in ((0, 16, 16), (1, 8, 8), (2, 12, 12)):  # a luma TB and two chroma TBs in it
        code_tb.dispatcher(st, enc.tp, ctx, True, c, x, y, 2, 26 if c else 10, 1)
    after = [np.array(a) for a in st.rec + st.av + st.lv + st.cbf + st.ts + (st.mode, st.tdepth)]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    restore_region(st, snap, 16, 16, 4)
    assert all(np.array_equal(a, b) for a, b in
               zip(before, st.rec + st.av + st.lv + st.cbf + st.ts + (st.mode, st.tdepth)))


class _PythonRDOQ(RDOQQuantizer):
    """RDOQ's rules run in Python: the encoder cannot run it compiled (not the registry's
    own class), so it takes the EXTERNAL path with the live contexts."""


def _external_rdoq(qp: int) -> EncoderQuantizer:
    q = EncoderQuantizer("rdoq", qp)
    q.q.__class__ = _PythonRDOQ
    return q


def test_quantizer_sees_the_carried_contexts():
    """During the RD search a Python quantizer is given the live CABAC states
    (extract_rate_state of the search's contexts), which move away from the slice's
    initial states."""
    planes = picture("natural", 8, 64, 64)
    q = _external_rdoq(27)
    seen = []
    inner = q.q.quantize

    def spy(batch):
        seen.append(np.array(batch.ctx[0]))
        # the rate state is extract_rate_state of the search's current contexts (cbf
        # context of the block's trafoDepth: luma 0/1, chroma 0..)
        c = int(batch.c_idx[0])
        assert any(np.array_equal(seen[-1], extract_rate_state(q.live_ctx, None, c, inc)) for inc in range(3))
        return inner(batch)

    q.q.quantize = spy
    PictureEncoder(_params(64, 64, 8, 27), q, preset="medium").encode(planes)
    assert q.live_ctx is None  # detached after the picture
    init = {tuple(s) for s in q.state}
    assert len(seen) > 10 and sum(tuple(s) not in init for s in seen) > len(seen) // 2


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_python_quantizer_gives_the_compiled_quantizers_bytes(preset):
    """One quantizer protocol: RDOQ called back in Python (EXTERNAL, with the contexts the
    search hands it) codes the same stream as the RDOQ compiled into the search."""
    for bd, qp, content, size in ((8, 27, "natural", (96, 64)), (10, 37, "noise", (72, 40))):
        planes = picture(content, bd, *size, seed=qp)
        p = _params(*size, bd, qp, ts=bd == 10)
        native = PictureEncoder(p, EncoderQuantizer("rdoq", qp), preset=preset).encode(planes)
        python = PictureEncoder(p, _external_rdoq(qp), preset=preset).encode(planes)
        assert python.data == native.data


def test_a_failing_python_quantizer_fails_the_encode():
    """An exception cannot cross the compiled units: it is kept and raised by the encoder
    after the search, and the next picture starts clean."""
    from codeclab.codecs.hevc import tb_coding

    q = _external_rdoq(27)

    def broken(batch):
        raise RuntimeError("quantizer broke")

    q.q.quantize = broken
    enc = PictureEncoder(_params(64, 64, 8, 27), q, preset="medium")
    with pytest.raises(RuntimeError, match="quantizer broke"):
        enc.encode(picture("natural", 8, 64, 64))
    assert tb_coding.EXTERNAL == [None, None] and q.live_ctx is None


def test_price_luma_matches_the_writer():
    """The RD search's batch pricer counts cbf_luma + residual_coding as the estimate-mode
    writer does, each block from the same contexts."""
    from codeclab.codecs.hevc.residual import write_residual
    from codeclab.codecs.hevc.search import _price_luma

    rng = np.random.default_rng(5)
    lv = (rng.integers(-3, 4, (6, 8, 8)) * (rng.random((6, 8, 8)) < 0.3)).astype(np.int32)
    lv[2] = 0
    scans = np.array([0, 1, 2, 0, 1, 2], dtype=np.int64)
    w = CabacWriter(T.INIT_VALUES_I, 30, estimate=True)
    got = _price_luma.dispatcher(w.eng, w.ctx, w.buf, lv, 3, scans, 0, True, False)
    for b in range(6):
        ww = CabacWriter(T.INIT_VALUES_I, 30, estimate=True)
        encode_bin(ww.eng, ww.ctx, ww.buf, T.CTX_CBF_LUMA + 1, int(lv[b].any()))
        if lv[b].any():
            write_residual(ww, lv[b], 3, 0, int(scans[b]), True, False, False)
        assert got[b] == pytest.approx(ww.eng[E_FRAC] / FRAC_ONE)


def test_estimate_mode_prices_a_picture_like_the_real_coder():
    """The slice writer in estimate mode (what the RD search prices with) counts within
    1.5 % of the slice data it really writes."""
    w, h = 200, 120
    for qp, content in ((22, "noise"), (32, "stripes")):
        enc = PictureEncoder(_params(w, h, 8, qp, filters=False), preset="medium")
        st, _ = enc.search(picture(content, 8, w, h, seed=1))
        est = enc.write_slice(st, estimate=True).eng[E_FRAC] / FRAC_ONE
        real = 8 * len(enc.write_slice(st).getvalue())
        assert abs(est - real) / real < 0.015, (est, real)


def test_unknown_preset_is_a_usage_error():
    with pytest.raises(UsageError):
        PictureEncoder(_params(64, 64, 8, 27), preset="turbo")


def test_preset_option_through_the_codec_registry():
    """HevcOptions.preset (CLI --preset) reaches the encoder; every preset decodes exactly."""
    from codeclab.base.frame import Frame, VideoFormat
    from codeclab.codecs import get_codec, make_options

    spec = get_codec("hevc")
    fmt = VideoFormat(64, 48, bit_depth=8, fps=Fraction(25))
    planes = picture("natural", 8, 64, 48)
    for preset in ("fast", "slow"):
        opts = make_options(spec, {"qp": 32, "preset": preset, "quant": "rdoq", "keep_recon": True})
        enc, dec = spec.make_encoder(fmt, opts), spec.make_decoder(fmt, opts)
        assert enc._pic.preset.name == preset
        (pk,) = enc.encode(Frame(tuple(planes), fmt, 0, 0))
        (out,) = dec.decode(pk)
        assert all(np.array_equal(a, b) for a, b in zip(out.planes, pk.props["recon"]))
    with pytest.raises(UsageError):
        make_options(spec, {"preset": "veryslow"})


@pytest.mark.parametrize("preset", ["medium", "slow"])
def test_transform_skip_fast_as_hm(preset):
    """HM's TransformSkipFast (Preset.ts_fast, on in every preset): luma transform skip only
    in NxN CUs, chroma only where a co-located luma TB chose it. Screen-like content (random
    binary pixels) makes the search choose transform skip elsewhere when the rule is off."""
    rng = np.random.default_rng(3)
    y = (rng.random((64, 96)) < 0.5).astype(np.int32) * 200 + 20
    planes = [y, y[::2, ::2], y[1::2, 1::2]]
    outside = {}
    for fast in (True, False):
        enc = PictureEncoder(_params(96, 64, 8, 22, ts=True), EncoderQuantizer("rdoq", 22), preset=preset)
        assert enc.tp.ts_fast
        enc.tp = enc.tp._replace(ts_fast=fast)
        st, _ = enc.search(planes)
        ts0 = np.asarray(st.ts[0]).astype(bool)
        nxn_units = np.repeat(np.repeat(np.asarray(st.nxn), 2, axis=0), 2, axis=1) != 0
        outside[fast] = int((ts0 & ~nxn_units).sum())
        if fast:
            assert ts0.any()
            luma_any = ts0.reshape(ts0.shape[0] // 2, 2, ts0.shape[1] // 2, 2).any(axis=(1, 3))
            for c in (1, 2):
                assert not (np.asarray(st.ts[c]).astype(bool) & ~luma_any).any()
    assert outside[True] == 0 and outside[False] > 0
