"""The proof: FFmpeg (PyAV) decodes our streams to pictures bit-identical to our own
reconstruction, logging nothing at warning level or worse.

Matrix: {8, 10-bit} x {QP 0, 1, 12, 22, 27, 32, 37, 51} x {64x64, 416x240, 200x120,
138x90 (conformance window)} x {sign hiding on/off} x {transform skip on/off} x {natural,
flat, noise, max-contrast stripes}, in-loop filters off. The full product is slow-marked;
the fast tests run a pairwise covering subset (every pair of factor values at least once).
With deblocking and SAO on, streams must decode cleanly and still match (our loop filters
are the decoder's). These run the SATD decisions (preset fast); the RD search (presets
medium / slow) with both quantizers runs a slow-marked subset of the same matrix, and
tests/codecs/hevc/test_search.py its fast checks.

HM's decoder, a second decoder (``codecs.refsw.hm_decode``; skipped where
``../shared/tools/hm/TAppDecoderStatic`` is absent), decodes every stream of both slow
matrices too: its output must be our reconstruction bit for bit, and every other stream
carries the MD5 SEI (``md5``), which HM must find correct. The slow FFmpeg tests hand
their streams to the HM tests that follow them (``_CODED``; HM takes well under a
second for a whole matrix); run alone, an HM test codes its streams itself.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import av
import numpy as np
import pytest
from _synth import MEDIA

from codeclab.codecs.hevc.encoder import PictureEncoder
from codeclab.codecs.hevc.params import StreamParams

BDS = (8, 10)
QPS = (0, 1, 12, 22, 27, 32, 37, 51)
SIZES = ((64, 64), (416, 240), (200, 120), (138, 90))
BOOLS = (True, False)
CONTENTS = ("natural", "flat", "noise", "stripes")
FACTORS = (BDS, QPS, SIZES, BOOLS, BOOLS, CONTENTS)


def ffmpeg_decode(data: bytes) -> tuple[list[list[np.ndarray]], list[str]]:
    """Decode one access unit with FFmpeg's hevc decoder; (planes per frame, log lines of
    warning level or worse)."""
    old = av.logging.get_level()
    av.logging.set_level(av.logging.VERBOSE)
    try:
        with av.logging.Capture() as logs:
            cc = av.CodecContext.create("hevc", "r")
            frames = list(cc.decode(av.Packet(data))) + list(cc.decode(None))
            out = [[np.from_dlpack(p).copy() for p in f.planes] for f in frames]
    finally:
        av.logging.set_level(old)
    bad = [f"{name}: {msg.strip()}" for level, name, msg in logs if level <= av.logging.WARNING]
    return out, bad


@lru_cache(maxsize=None)
def _natural(bd: int) -> list[np.ndarray] | None:
    path = MEDIA / "val" / "Kite.png"
    if not path.exists():
        return None
    with av.open(str(path)) as c:
        f = next(c.decode(video=0)).reformat(format="yuv420p" if bd == 8 else "yuv420p10le")
        return [np.from_dlpack(p).copy() for p in f.planes]


def picture(content: str, bd: int, w: int, h: int, seed: int = 0) -> list[np.ndarray]:
    dt = np.uint8 if bd == 8 else np.uint16
    top = (1 << bd) - 1
    shapes = [(h, w), (h // 2, w // 2), (h // 2, w // 2)]
    if content == "natural":
        nat = _natural(bd)
        if nat is None:
            pytest.skip(f"real media not found under {MEDIA}")
        y0, x0 = 200, 300  # a textured region of the photograph
        return [nat[0][y0:y0 + h, x0:x0 + w].copy(),
                nat[1][y0 // 2:y0 // 2 + h // 2, x0 // 2:x0 // 2 + w // 2].copy(),
                nat[2][y0 // 2:y0 // 2 + h // 2, x0 // 2:x0 // 2 + w // 2].copy()]
    rng = np.random.default_rng(seed)
    if content == "flat":
        vals = rng.integers(0, top + 1, 3)
        return [np.full(s, v, dt) for s, v in zip(shapes, vals)]
    if content == "noise":
        return [rng.integers(0, top + 1, s).astype(dt) for s in shapes]
    # max-contrast stripes: vertical in luma (period 2 and 6 halves), horizontal and
    # checkered in chroma
    yy, xx = np.mgrid[:h, :w]
    luma = np.where(((xx // np.where(xx < w // 2, 1, 3)) + (yy >= h // 2) * (yy // 2)) % 2 == 0, 0, top)
    ch, cw = h // 2, w // 2
    cy, cx = np.mgrid[:ch, :cw]
    return [luma.astype(dt), np.where(cy % 2 == 0, top, 0).astype(dt), np.where((cx + cy) % 2, top, 0).astype(dt)]


def recon_digest(planes, bd: int) -> str:
    """MD5 of a cropped picture as a decoder writes it to .yuv (bytes, or 16-bit little-endian)."""
    dt = "<u1" if bd == 8 else "<u2"
    return hashlib.md5(b"".join(np.ascontiguousarray(p, dt).tobytes() for p in planes)).hexdigest()


@dataclass(frozen=True)
class Coded:
    """One checked stream, kept for HM's decoder: the access unit and our picture's digest."""

    data: bytes
    bd: int
    size: tuple[int, int]
    recon_md5: str
    md5_sei: bool
    label: str


def encode_check(bd: int, qp: int, size: tuple[int, int], sdh: bool, ts: bool, content: str, *,
                 deblock: bool = False, sao: bool = False, ctb: int = 5, tu: int = 1,
                 preset: str = "fast", quant: str = "sq", md5: bool = False) -> Coded:
    from codeclab.codecs.hevc.quantizer import EncoderQuantizer

    w, h = size
    planes = picture(content, bd, w, h, seed=qp)
    p = StreamParams(w, h, bd, ctb, tu, qp, Fraction(25), sdh, ts, deblock, sao, md5)
    pic = PictureEncoder(p, EncoderQuantizer(quant, qp), preset=preset).encode(planes)
    frames, bad = ffmpeg_decode(pic.data)
    label = (f"{bd}-bit qp{qp} {w}x{h} sdh={sdh} ts={ts} {content} deblock={deblock} sao={sao} "
             f"{preset} {quant} md5={md5}")
    assert not bad, f"{label}: FFmpeg logged {bad[:3]}"
    assert len(frames) == 1, label
    for c in range(3):
        got = frames[0][c]
        assert got.shape == pic.recon[c].shape, label
        if not np.array_equal(got, pic.recon[c]):
            where = np.argwhere(got != pic.recon[c])[0]
            pytest.fail(f"{label}: component {c} differs first at (y, x) = {tuple(where)}")
    return Coded(pic.data, bd, size, recon_digest(pic.recon, bd), md5, label)


def hm_check(coded: list[Coded]) -> None:
    """HM's decoder on the streams, one run per (bit depth, size): each output picture is our
    reconstruction, HM reports no error, and every MD5 SEI is found correct."""
    from codeclab.codecs.refsw import hm_decode

    key = lambda c: (c.bd, c.size)  # noqa: E731
    for (bd, (w, h)), group in itertools.groupby(sorted(coded, key=key), key=key):
        group = list(group)
        out = hm_decode(b"".join(c.data for c in group), w, h, bd)
        where = f"HM on {len(group)} {bd}-bit {w}x{h} streams (first: {group[0].label})"
        assert out.returncode == 0 and "ERROR" not in out.log, f"{where}: {out.log[-2000:]}"
        assert len(out.pictures) == len(group), f"{where}: {len(out.pictures)} pictures"
        for c, pic in zip(group, out.pictures):
            assert recon_digest(pic, bd) == c.recon_md5, f"{c.label}: HM's picture is not our reconstruction"
        assert len(out.md5) == sum(c.md5_sei for c in group), f"{where}: {len(out.md5)} hash checks"
        assert all(ok for *_, ok in out.md5), f"{where}: HM reports an MD5 mismatch"


def need_hm() -> None:
    from codeclab.base.errors import CodecError
    from codeclab.codecs.refsw import _HM_DECODER, find_binary

    try:
        find_binary(_HM_DECODER, None)
    except CodecError as e:
        pytest.skip(str(e))


#: streams of the slow FFmpeg matrices, by (matrix, bit depth, content), for the HM tests
_CODED: dict[tuple[str, int, str], list[Coded]] = {}


def pairwise(factors: tuple[tuple, ...]) -> list[tuple]:
    """Greedy covering array of strength 2 (deterministic)."""
    uncovered = {(i, a, j, b) for i, j in itertools.combinations(range(len(factors)), 2)
                 for a in range(len(factors[i])) for b in range(len(factors[j]))}
    cands = list(itertools.product(*[range(len(f)) for f in factors]))
    rows = []
    while uncovered:
        best, gain = None, -1
        for c in cands:
            g = sum((i, c[i], j, c[j]) in uncovered for i, j in itertools.combinations(range(len(c)), 2))
            if g > gain:
                best, gain = c, g
        rows.append(best)
        uncovered -= {(i, best[i], j, best[j]) for i, j in itertools.combinations(range(len(best)), 2)}
    return [tuple(f[k] for f, k in zip(factors, r)) for r in rows]


PAIRWISE = pairwise(FACTORS)


def test_pairwise_subset_covers_every_pair():
    for i, j in itertools.combinations(range(len(FACTORS)), 2):
        seen = {(r[i], r[j]) for r in PAIRWISE}
        assert len(seen) == len(FACTORS[i]) * len(FACTORS[j])


@pytest.mark.parametrize("bd,qp,size,sdh,ts,content", PAIRWISE,
                         ids=[f"{b}b-qp{q}-{s[0]}x{s[1]}-sdh{int(d)}-ts{int(t)}-{c}" for b, q, s, d, t, c in PAIRWISE])
def test_ffmpeg_bit_exact_pairwise(bd, qp, size, sdh, ts, content):
    encode_check(bd, qp, size, sdh, ts, content)


@pytest.mark.parametrize("bd,qp,ctb,tu,content", [
    (8, 22, 4, 2, "natural"), (8, 37, 6, 1, "noise"), (10, 32, 5, 0, "natural"),
    (10, 12, 6, 3, "stripes"), (8, 51, 5, 1, "flat"), (8, 1, 4, 1, "noise")])
def test_ffmpeg_bit_exact_with_deblocking_and_sao(bd, qp, ctb, tu, content):
    encode_check(bd, qp, (200, 120), True, True, content, deblock=True, sao=True, ctb=ctb, tu=tu)


def test_registry_codec_round_trip():
    """Codec ``hevc`` through the registry and FFmpegDecoder: decoded = packets' recon (the
    default structure: an IDR, then a P picture)."""
    from codeclab.base.frame import Frame, VideoFormat
    from codeclab.codecs import get_codec, make_options

    spec = get_codec("hevc")
    fmt = VideoFormat(138, 90, bit_depth=10, fps=Fraction(30))
    opts = make_options(spec, {"qp": 27, "keep_recon": True, "transform_skip": "yes"})
    enc, dec = spec.make_encoder(fmt, opts), spec.make_decoder(fmt, opts)
    for i in range(2):
        fr = Frame(tuple(picture("noise" if i else "stripes", 10, 138, 90, seed=i)), fmt, i, i)
        (pk,) = enc.encode(fr)
        assert pk.keyframe == (i == 0) and pk.index == i and pk.props["bits"] == 8 * len(pk.data)
        assert pk.props["pict_type"] == ("I" if i == 0 else "P")
        assert 0.0 < pk.props["encoder_cpu_s"] <= pk.props["encode_s"] * 1.05 + 0.01  # one thread: CPU <= wall
        (out,) = dec.decode(pk)
        assert all(np.array_equal(a, b) for a, b in zip(out.planes, pk.props["recon"]))
    assert enc.flush() == [] and dec.flush() == []


def full_matrix(bd: int, content: str) -> list[Coded]:
    """Every QP x size x sign hiding x transform skip; the MD5 SEI on half of the streams,
    by the parity of the factors' indices (so on and off with every factor value)."""
    idx = itertools.product(*(range(len(f)) for f in (QPS, SIZES, BOOLS, BOOLS)))
    return [encode_check(bd, QPS[q], SIZES[z], BOOLS[d], BOOLS[t], content, md5=(q + z + d + t) % 2 == 0)
            for q, z, d, t in idx]


def rd_matrix(bd: int, content: str) -> list[Coded]:
    """The RD search on the matrix: every QP x the three small sizes, (sign hiding,
    transform skip) = (on, off) / (off, on), presets medium/slow and quantizers sq/rdoq
    taking turns, CTB 32/64 and the filters on every other stream (192 streams in all),
    MD5 SEI on every other stream."""
    out = []
    k = 0
    for qp, size in itertools.product(QPS, (SIZES[0], SIZES[2], SIZES[3])):
        sdh, ts = ((True, False), (False, True))[(k // 4) % 2]
        preset, quant = (("medium", "sq"), ("slow", "rdoq"), ("medium", "rdoq"), ("slow", "sq"))[k % 4]
        out.append(encode_check(bd, qp, size, sdh, ts, content, preset=preset, quant=quant, ctb=5 + (k % 3 == 0),
                                deblock=(k // 2) % 2 == 1, sao=(k // 2) % 2 == 1, md5=(k // 8) % 2 == 0))
        k += 1
    return out


MATRICES = {"full": full_matrix, "rd": rd_matrix}


@pytest.mark.slow
@pytest.mark.parametrize("bd", BDS)
@pytest.mark.parametrize("content", CONTENTS)
def test_ffmpeg_bit_exact_full_matrix(bd, content):
    _CODED[("full", bd, content)] = full_matrix(bd, content)


@pytest.mark.slow
@pytest.mark.parametrize("bd", BDS)
@pytest.mark.parametrize("content", CONTENTS)
def test_ffmpeg_bit_exact_rd_matrix(bd, content):
    _CODED[("rd", bd, content)] = rd_matrix(bd, content)


@pytest.mark.slow
@pytest.mark.parametrize("matrix", sorted(MATRICES))
@pytest.mark.parametrize("bd", BDS)
@pytest.mark.parametrize("content", CONTENTS)
def test_hm_bit_exact_slow_matrices(matrix, bd, content):
    """HM's decoder on every stream of the slow matrices (coded here when run alone)."""
    need_hm()
    coded = _CODED.pop((matrix, bd, content), None)
    hm_check(coded if coded is not None else MATRICES[matrix](bd, content))


@pytest.mark.parametrize("name", ["sq", "rdoq"])
def test_every_registered_quantizer_decodes_bit_exact(name):
    """The quantizer is pluggable: any registry entry behind EncoderQuantizer gives streams
    FFmpeg decodes to our reconstruction (sign hiding on, so the parity rule is exercised)."""
    from codeclab.codecs.hevc.quantizer import EncoderQuantizer, available_quantizers

    if name not in available_quantizers():
        pytest.skip(f"quantizer {name} not registered")
    for bd, qp, content in ((8, 27, "noise"), (10, 22, "stripes")):
        planes = picture(content, bd, 200, 120, seed=qp)
        p = StreamParams(200, 120, bd, 5, 1, qp, Fraction(25), True, True, True, False)
        pic = PictureEncoder(p, EncoderQuantizer(name, qp)).encode(planes)
        frames, bad = ffmpeg_decode(pic.data)
        assert not bad and len(frames) == 1
        assert all(np.array_equal(frames[0][c], pic.recon[c]) for c in range(3))
