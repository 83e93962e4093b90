"""RD search and presets of the HEVC intra encoder (codecs/hevc/rdsearch.py).

- every preset x quantizer {sq, rdoq} x 8/10-bit gives streams FFmpeg decodes bit-exactly
  to our reconstruction (small pictures, filters and transform skip on);
- the RD presets never lose in the picture's own RD cost J = SSE + lambda * bits against the
  SATD decisions (filters off, so SSE is that of what the decisions produce);
- the search leaves no trace: replaying its chosen decisions on a fresh encoder (no search,
  no snapshots) reproduces the stream byte for byte;
- the quantizer is handed the carried CABAC contexts, not the slice's initial ones.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from codeclab.base.errors import UsageError
from codeclab.codecs.hevc.encoder import PictureEncoder
from codeclab.codecs.hevc.params import StreamParams
from codeclab.codecs.hevc.quantizer import EncoderQuantizer, extract_rate_state
from codeclab.codecs.hevc.rdsearch import PRESETS, price_luma_batch

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
            j[preset] = d + enc.lam * pic.bits
        assert j["medium"] <= j["fast"] * 1.0005, j
        assert j["slow"] <= j["fast"] * 1.0005, j


def _replay(p: StreamParams, planes, cus) -> bytes:
    """Code the given CU records' decisions (partitions, modes, TU tree, chroma mode) on a
    fresh encoder without any search, and write the stream."""
    from codeclab.codecs.hevc.syntax import CodingUnit, TransformNode

    enc = PictureEncoder(p, EncoderQuantizer("sq", p.qp, rounding=1 / 3), preset="fast")
    hits = {}

    def tree(node: TransformNode, mode_of) -> TransformNode:
        out = TransformNode(node.x, node.y, node.log2, node.depth, split=node.split)
        if node.split:
            out.children = [tree(ch, mode_of) for ch in node.children]
        else:
            enc._set_mode(node.x, node.y, node.log2, mode_of(node))
            enc._code_luma_tb(out, mode_of(node))
        return out

    def decide(x, y, log2, depth):  # replaces the SATD decisions by the records
        cu = cus[(x, y)] if (x, y) in cus and cus[(x, y)].log2 == log2 else None
        if cu is None:
            h = 1 << (log2 - 1)
            for cx, cy in ((x, y), (x + h, y), (x, y + h), (x + h, y + h)):
                if cx < p.coded_width and cy < p.coded_height:
                    decide(cx, cy, log2 - 1, depth + 1)
            return
        s = 1 << log2
        enc.maps.depth[y >> 3:(y + s) >> 3, x >> 3:(x + s) >> 3] = depth
        if cu.nxn:
            node = TransformNode(x, y, 3, 0, split=True)
            for k, ch in enumerate(cu.tu.children):
                enc._set_mode(ch.x, ch.y, 2, cu.luma_modes[k])
                node.children.append(tree(ch, lambda n, m=cu.luma_modes[k]: m))
        else:
            enc._set_mode(x, y, log2, cu.luma_modes[0])
            node = tree(cu.tu, lambda n: cu.luma_modes[0])
        new = CodingUnit(x, y, log2, cu.nxn, list(cu.luma_modes), cu.chroma_idx, cu.chroma_mode, node)
        enc._chroma_tree(node, cu.chroma_mode)
        enc.maps.cus[(x, y)] = new
        hits[(x, y)] = True

    enc._decide = decide
    pic = enc.encode(planes)
    assert len(hits) == len(cus)
    return pic.data


@pytest.mark.parametrize("preset", ["medium", "slow"])
def test_search_leaves_no_trace(preset):
    """Snapshots and restores of contexts, reconstruction and maps are complete: a replay
    of the chosen decisions without any search gives the identical stream."""
    for bd, qp, content, size in ((8, 27, "natural", (96, 64)), (10, 32, "noise", (72, 40))):
        planes = picture(content, bd, *size, seed=qp)
        p = _params(*size, bd, qp, ctb=6 if bd == 8 else 5)
        enc = PictureEncoder(p, EncoderQuantizer("sq", qp, rounding=1 / 3), preset=preset)
        pic = enc.encode(planes)
        assert _replay(p, planes, dict(enc.maps.cus)) == pic.data


def test_quantizer_sees_the_carried_contexts():
    """During the search RDOQ is given the live CABAC states (extract_rate_state of the
    search's writer), which move away from the slice's initial states."""
    planes = picture("natural", 8, 64, 64)
    q = EncoderQuantizer("rdoq", 27)
    seen = []
    inner = q.q.quantize

    def spy(batch):
        seen.append(np.array(batch.ctx[0]))
        # the rate state is extract_rate_state of the writer's current contexts (cbf
        # context of the block's trafoDepth: luma 0/1, chroma 0..)
        c = int(batch.c_idx[0])
        assert any(np.array_equal(seen[-1], extract_rate_state(q.live_ctx, None, c, inc)) for inc in range(3))
        return inner(batch)

    q.q.quantize = spy
    PictureEncoder(_params(64, 64, 8, 27), q, preset="medium").encode(planes)
    assert q.live_ctx is None  # detached after the picture
    init = {tuple(s) for s in q.state}
    assert len(seen) > 10 and sum(tuple(s) not in init for s in seen) > len(seen) // 2


def test_price_luma_batch_matches_the_writer():
    """The batch pricer's bits are those of cbf_luma + residual_coding in estimate mode."""
    from codeclab.bitstream.cabac import E_FRAC, FRAC_ONE, CabacWriter, encode_bin
    from codeclab.codecs.hevc import tables as T
    from codeclab.codecs.hevc.residual import write_residual

    rng = np.random.default_rng(5)
    lv = (rng.integers(-3, 4, (6, 8, 8)) * (rng.random((6, 8, 8)) < 0.3)).astype(np.int32)
    lv[2] = 0
    scans = np.array([0, 1, 2, 0, 1, 2])
    w = CabacWriter(T.INIT_VALUES_I, 30, estimate=True)
    got = price_luma_batch(w.ctx, lv, 3, scans, 0, True, False)
    for b in range(6):
        ww = CabacWriter(T.INIT_VALUES_I, 30, estimate=True)
        encode_bin(ww.eng, ww.ctx, ww.buf, T.CTX_CBF_LUMA + 1, int(lv[b].any()))
        if lv[b].any():
            write_residual(ww, lv[b], 3, 0, int(scans[b]), True, False, False)
        assert got[b] == pytest.approx(ww.eng[E_FRAC] / FRAC_ONE)


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
