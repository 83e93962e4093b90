"""P and B pictures (gop ldp, ldb, ra): FFmpeg and HM's decoder return our reconstruction
bit for bit, in presentation order.

Content with motion the encoder must find: a textured picture that pans by whole and
fractional steps under a patch moving the other way, with a flat and a noisy region, over
8 frames (so every picture of HM's low-delay GOP of 4 appears twice and all four references
are used; random access codes the IDR, then a shortened GOP 4 2 1 3 6 5 7 with
bi-prediction); and, where the real media are present, a window of a real clip. The fast
matrix is a pairwise covering subset of {8, 10 bit} x {QP} x {sizes, one not a multiple of
8} x {presets} x {sq, rdoq} x {refs} x {structures}; a CRA with its leading (RASL)
pictures is checked on its own; the slow one adds the full product of structures, presets
and quantizers at both depths and a real clip, and HM's decoder checks the MD5 SEI of every
picture where ``../shared/tools/hm/TAppDecoderStatic`` exists.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest
from _synth import MEDIA

from codeclab.base.errors import UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.codecs.base import get_codec, make_options
from codeclab.codecs.hevc import HevcEncoder, HevcOptions
from codeclab.codecs.hevc.gop import GopPlanner
from codeclab.codecs.hevc.inter import scale_mv

from .test_hevc_decode import need_hm, pairwise, recon_digest

NFRAMES = 8


def moving(bd: int, w: int, h: int, n: int = NFRAMES, seed: int = 0) -> list[tuple[np.ndarray, ...]]:
    """n frames: a smooth random texture panning right/down (1.5 px/frame on average, in
    steps of 1 and 2), a 16x16 patch moving left, a flat band and a noise band."""
    rng = np.random.default_rng(seed)
    big = rng.normal(0, 1, (h + 64, w + 64))
    for _ in range(3):  # low-pass: a texture motion search can lock onto
        big = (big + np.roll(big, 1, 0) + np.roll(big, 1, 1) + np.roll(big, (1, 1), (0, 1))) / 4
    big = (big - big.min()) / (np.ptp(big) + 1e-9)
    top = (1 << bd) - 1
    frames = []
    for k in range(n):
        ox, oy = 32 - (3 * k) // 2, 32 - k // 2
        y = big[oy:oy + h, ox:ox + w] * top
        px = max(w - 20 - 3 * k, 0)
        y[4:20, px:px + 16] = top * 0.9 - y[4:20, px:px + 16] * 0.5
        y[h - 8:, : w // 3] = top // 3                                   # flat
        y[h - 8:, w // 2:] = rng.integers(0, top + 1, (8, w - w // 2))  # noise
        y = np.clip(y, 0, top)
        u = y[::2, ::2] * 0.5 + top * 0.25
        v = top - y[1::2, 1::2] * 0.5
        dt = np.uint8 if bd == 8 else np.uint16
        frames.append(tuple(np.rint(p).astype(dt) for p in (y, u, v)))
    return frames


def clip_frames(bd: int, w: int, h: int, n: int = NFRAMES) -> list[tuple[np.ndarray, ...]]:
    path = MEDIA / "clips" / "realshort.mp4"
    if not path.exists():
        pytest.skip(f"real media not found under {MEDIA}")
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            f = f.reformat(format="yuv420p" if bd == 8 else "yuv420p10le")
            p = [np.from_dlpack(q).copy() for q in f.planes]
            out.append((p[0][:h, :w], p[1][: h // 2, : w // 2], p[2][: h // 2, : w // 2]))
            if len(out) == n:
                break
    return out


def decode_stream(data: bytes) -> tuple[list[list[np.ndarray]], list[str]]:
    """FFmpeg's decode of a whole stream; (planes per picture, warning-or-worse log lines)."""
    old = av.logging.get_level()
    av.logging.set_level(av.logging.VERBOSE)
    try:
        with av.logging.Capture() as logs, av.open(io.BytesIO(data), format="hevc") as c:
            out = [[np.from_dlpack(p).copy() for p in f.planes] for f in c.decode(video=0)]
    finally:
        av.logging.set_level(old)
    return out, [f"{name}: {msg.strip()}" for level, name, msg in logs if level <= av.logging.WARNING]


def code(frames: list[tuple[np.ndarray, ...]], bd: int, gop: str = "ldp", **opts) -> tuple[bytes, list, list]:
    """Encode; (stream, our reconstructions and packet props in presentation order). The
    packets come in decoding order with increasing dts, never after their pts."""
    h, w = frames[0][0].shape
    fmt = VideoFormat(w, h, "420", bd, Fraction(25))
    enc = HevcEncoder(fmt, HevcOptions(gop=gop, keep_recon=True, **opts))
    packets = [pk for i, planes in enumerate(frames) for pk in enc.encode(Frame(planes, fmt, i, i))]
    packets += enc.flush()
    assert sorted(pk.index for pk in packets) == list(range(len(frames)))
    dts = [pk.dts for pk in packets]
    assert dts == sorted(set(dts)) and all(pk.dts <= pk.pts for pk in packets)
    shown = sorted(packets, key=lambda pk: pk.pts)
    return b"".join(pk.data for pk in packets), [pk.props["recon"] for pk in shown], [pk.props for pk in shown]


def check_ffmpeg(frames, bd: int, label: str, **opts) -> tuple[bytes, list, list]:
    data, recons, props = code(frames, bd, **opts)
    got, bad = decode_stream(data)
    assert not bad, f"{label}: FFmpeg logged {bad[:3]}"
    assert len(got) == len(frames), label
    for i, (g, r) in enumerate(zip(got, recons)):
        for c in range(3):
            if not np.array_equal(g[c], r[c]):
                where = tuple(np.argwhere(g[c] != r[c])[0])
                pytest.fail(f"{label}: picture {i} ({props[i]['pict_type']}) component {c} differs first at {where}")
    return data, recons, props


SIZES = ((72, 56), (70, 54))
FACTORS = ((8, 10), (22, 37), SIZES, ("fast", "medium", "slow"), ("sq", "rdoq"), (1, 4), ("ldp", "ldb", "ra"))
PAIRWISE = pairwise(FACTORS)


@pytest.mark.parametrize("bd,qp,size,preset,quant,refs,gop", PAIRWISE,
                         ids=["-".join(map(str, c)) for c in PAIRWISE])
def test_ffmpeg_bit_exact_pairwise(bd, qp, size, preset, quant, refs, gop):
    w, h = size
    check_ffmpeg(moving(bd, w, h), bd, f"{bd}-bit qp{qp} {w}x{h} {preset} {quant} refs{refs} {gop}",
                 qp=qp, preset=preset, quant=quant, refs=refs, gop=gop)


def test_cra_and_its_leading_pictures_decode():
    """Random access with an intra period of 16: the CRA at 16 is coded before 1..15, which
    are RASL pictures still predicted from the IDR; 17 (after the CRA) is not. FFmpeg and
    HM decode every picture; pictures are output in presentation order."""
    from codeclab.codecs.refsw import hm_decode

    frames = moving(8, 48, 40, n=18)
    data, recons, props = check_ffmpeg(frames, 8, "cra", qp=32, preset="fast", gop="ra", intra_period=16, md5=True)
    assert [p["pict_type"] for p in props] == ["I"] + ["B"] * 15 + ["I", "B"]
    need_hm()
    out = hm_decode(data, 48, 40, 8)
    assert out.returncode == 0 and len(out.md5) == 18 and all(ok for *_, ok in out.md5), out.log[-2000:]
    assert [recon_digest(p, 8) for p in out.pictures] == [recon_digest(r, 8) for r in recons]


@pytest.mark.parametrize("qp", [0, 51])
def test_ffmpeg_bit_exact_qp_extremes(qp):
    check_ffmpeg(moving(8, 40, 24, n=5), 8, f"qp{qp}", qp=qp, preset="medium", quant="rdoq", refs=2)


@pytest.mark.parametrize("quant", ["nrdoq-fcn", "nrdoq-ar"])
def test_neural_quantizers_code_p_pictures(quant):
    """The neural quantizers run on inter TBs too (with the P slice's contexts) and the
    stream still decodes to our reconstruction."""
    check_ffmpeg(moving(8, 40, 32, n=3), 8, quant, qp=30, preset="fast", quant=quant, refs=2)


@pytest.mark.parametrize("gop,preset,bd", [("ldp", "fast", 8), ("ldb", "medium", 10), ("ra", "slow", 8)])
def test_python_rdoq_gives_the_compiled_bytes_in_every_structure(gop, preset, bd):
    """One quantizer protocol in P and B pictures too: RDOQ called back in Python (the path
    of the neural quantizers and the training-data recorder) gets the lambda of each
    picture's own QP and the contexts the compiled RDOQ prices with (the search's, or the
    P / B slice's initial ones), so it codes the same stream."""
    from codeclab.codecs.hevc.quantizer import EncoderQuantizer, RDOQQuantizer

    class PythonRDOQ(RDOQQuantizer):  # not the registry's class: takes the callback path
        pass

    frames = moving(bd, 40, 32, n=6)
    h, w = frames[0][0].shape
    fmt = VideoFormat(w, h, "420", bd, Fraction(25))
    streams = []
    for python in (False, True):
        q = EncoderQuantizer("rdoq", 30)
        if python:
            q.q.__class__ = PythonRDOQ
        opts = HevcOptions(gop=gop, qp=30, preset=preset, quant="rdoq", refs=2)
        enc = HevcEncoder(fmt, opts, q)
        pk = [p for i, f in enumerate(frames) for p in enc.encode(Frame(f, fmt, i, i))] + enc.flush()
        streams.append(b"".join(p.data for p in pk))
        assert (q.calls > 0) == python  # the compiled RDOQ never calls back
    assert streams[0] == streams[1]


@pytest.mark.parametrize("quant,gop,preset,bd", [("nrdoq-ar", "ai", "fast", 8), ("nrdoq-fcn", "ldb", "medium", 10),
                                                  ("nrdoq-ar", "ra", "slow", 8), ("nrdoq-fcn", "ldp", "fast", 8)])
def test_compiled_networks_give_the_python_quantizers_bytes(quant, gop, preset, bd, monkeypatch):
    """The neural quantizers run inside the compiled search (features and inference in
    numba, no call back): the same stream as the registry's object called back in Python
    with the same contexts and lambdas, in I, P and B pictures, 8- and 10-bit (the FCN's
    Python path in numba too: torch's float sums may order differently)."""
    from codeclab.codecs.hevc.nrdoq import neural_quantizer as nq
    from codeclab.codecs.hevc.quantizer import EncoderQuantizer

    monkeypatch.setattr(nq, "NUMBA_FCN_MAX", 10 ** 9)

    class PythonNet(nq.NRDOQQuantizer):  # not the registry's class: takes the callback path
        pass

    frames = moving(bd, 40, 32, n=4, seed=3)
    h, w = frames[0][0].shape
    fmt = VideoFormat(w, h, "420", bd, Fraction(25))
    streams = []
    for python in (False, True):
        q = EncoderQuantizer(quant, 27)
        if python:
            q.q.__class__ = PythonNet
        opts = HevcOptions(gop=gop, qp=27, preset=preset, quant=quant, refs=2)
        enc = HevcEncoder(fmt, opts, q)
        pk = [p for i, f in enumerate(frames) for p in enc.encode(Frame(f, fmt, i, i))] + enc.flush()
        streams.append(b"".join(p.data for p in pk))
        assert (q.calls > 0) == python  # the compiled networks never call back
    assert streams[0] == streams[1]


def test_motion_is_used_and_hm_checks_every_picture():
    """The P pictures mostly predict (few intra units, some skips); HM's decoder checks the
    MD5 SEI of every picture and outputs our reconstruction."""
    from codeclab.codecs.refsw import hm_decode

    frames = moving(8, 96, 64)
    data, recons, props = check_ffmpeg(frames, 8, "md5", qp=32, preset="medium", md5=True)
    assert [p["pict_type"] for p in props] == ["I"] + ["P"] * (NFRAMES - 1)
    assert np.mean([p["intra_share"] for p in props[1:]]) < 0.2
    assert sum(p["bits"] for p in props[1:]) < props[0]["bits"] * (NFRAMES - 1) / 3
    need_hm()
    out = hm_decode(data, 96, 64, 8)
    assert out.returncode == 0 and "ERROR" not in out.log, out.log[-2000:]
    assert len(out.md5) == NFRAMES and all(ok for *_, ok in out.md5), out.log[-2000:]
    assert [recon_digest(p, 8) for p in out.pictures] == [recon_digest(r, 8) for r in recons]


def planned(g: GopPlanner, n: int) -> list[tuple[int, object]]:
    """(output index, SliceInfo) of n pictures in coding order, batch by batch."""
    out: list = []
    while len(out) < n:
        out += g.plan(len(out), min(g.batch_size(len(out)), n - len(out)))
    return out


def test_gop_planner_follows_hm_lowdelay_p():
    g = GopPlanner("ldp", 32, refs=4)
    infos = [s for _, s in planned(g, 40)]
    assert [s.qp for s in infos[:9]] == [31, 40, 39, 40, 33, 40, 39, 40, 33]
    assert infos[0].idr and not infos[1].idr
    assert infos[2].ref_list(0) == (-1, -2)          # POC 1, 0 (the rest not coded yet)
    assert infos[9].ref_list(0) == (-1, -5, -9)      # POC 8, 4, 0
    assert infos[14].ref_list(0) == (-1, -2, -6, -10)
    assert all(len(s.refs) + len(s.keep) <= 4 for s in infos) and g.max_refs == 4 and g.max_reorder == 0
    assert [s.idr for _, s in planned(GopPlanner("ldp", 32, intra_period=4), 9)] == \
        [True, False, False, False, True, False, False, False, True]
    ldb = [s for _, s in planned(GopPlanner("ldb", 32), 10)]
    assert [s.slice_type for s in ldb] == ["I"] + ["B"] * 9
    assert all(s.ref_list(1) == s.ref_list(0) for s in ldb)  # generalised B: the same pictures


def test_gop_planner_follows_hm_random_access():
    """encoder_randomaccess_main.cfg: coding order, QPs (offsets plus the QP offset model),
    two active references per list, the CRA and its RASL pictures, DPB size and reordering."""
    from codeclab.bitstream.nal import NAL_CRA, NAL_RASL_R, NAL_TRAIL_R

    g = GopPlanner("ra", 32, intra_period=32)
    plan = planned(g, 49)
    assert [i for i, _ in plan[:17]] == [0, 16, 8, 4, 2, 1, 3, 6, 5, 7, 12, 10, 9, 11, 14, 13, 15]
    s = dict(plan)
    assert [s[i].qp for i in (0, 16, 8, 4, 2, 1)] == [29, 33, 35, 38, 40, 41]
    assert s[1].ref_list(0) == (-1, 1) and s[1].ref_list(1) == (1, 3)  # L0 0 2, L1 2 4
    assert s[8].ref_list(0) == (-8, 8) and s[8].ref_list(1) == (8, -8)
    assert s[32].slice_type == "I" and s[32].nal_type == NAL_CRA and s[32].keep  # kept for its RASL pictures
    assert all(s[i].nal_type == NAL_RASL_R for i in range(17, 32))
    assert s[48].nal_type == NAL_TRAIL_R and s[48].ref_list(0) == (-16,)  # nothing before the CRA
    assert g.max_reorder == 4 and g.max_refs == 5
    with pytest.raises(UsageError):
        GopPlanner("ra", 32, intra_period=24)


def test_mv_scaling_matches_the_standard_formula():
    # 8-179..8-183 by hand: td = 2, tb = 1 -> tx = 8192, factor 128 -> (128 mv + 127) >> 8
    assert scale_mv(9, 2, 1) == 4 and scale_mv(-9, 2, 1) == -4  # (1152 + 127) >> 8
    assert scale_mv(7, 1, 4) == 28      # factor 1024 (4x)
    assert scale_mv(100, -3, 1) == -33  # factor -85: -(8500 + 127) >> 8


def test_options_and_parallel_promise():
    spec = get_codec("hevc")
    assert not spec.parallel(make_options(spec, {}))  # the default: low-delay P
    assert spec.parallel(make_options(spec, {"gop": "ai"}))
    for bad in ({"gop": "rab"}, {"refs": 5}, {"intra_period": -1}, {"gop": "ra", "intra_period": 20}):
        with pytest.raises(UsageError):
            HevcOptions(**bad)


@pytest.mark.slow
@pytest.mark.parametrize("bd", (8, 10))
def test_ffmpeg_and_hm_bit_exact_full_matrix(bd):
    from codeclab.codecs.refsw import hm_decode

    streams = []
    for content in ("moving", "clip"):
        frames = moving(bd, 70, 54) if content == "moving" else clip_frames(bd, 160, 96)
        for gop in ("ldp", "ldb", "ra"):
            for preset in ("fast", "medium", "slow"):
                for quant in ("sq", "rdoq"):
                    label = f"{bd}-bit {content} {gop} {preset} {quant}"
                    data, recons, _ = check_ffmpeg(frames, bd, label, qp=30, preset=preset, quant=quant, md5=True,
                                                   gop=gop)
                    streams.append((label, data, recons, frames[0][0].shape))
    need_hm()
    for label, data, recons, (h, w) in streams:
        out = hm_decode(data, w, h, bd)
        assert out.returncode == 0 and all(ok for *_, ok in out.md5) and len(out.md5) == len(recons), label
        assert [recon_digest(p, bd) for p in out.pictures] == [recon_digest(r, bd) for r in recons], label
