"""The .clc container: round trip, random access, the byte layout of docs/container.md, and
hostile input (hypothesis fuzz: every mutation of a valid file must give BitstreamError).

``_build`` below writes files from the spec with nothing but ``struct`` and ``zlib``, so
the writer's bytes are checked against an independent implementation of the spec, and
crafted files (valid CRCs around hostile fields) reach the checks behind the CRCs.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeclab.base.errors import BitstreamError, InputError, UsageError
from codeclab.base.frame import VideoFormat
from codeclab.codecs.base import Packet
from codeclab.pipeline.clc.container import ClcReader, ClcWriter, StreamHeader, open_clc

FMT = VideoFormat(64, 48, "420", 10, Fraction(30000, 1001), "bt2020nc", "full")
HDR = StreamHeader("fake", FMT, {"qp": 32, "mode": "fast", "gain": 0.5, "flag": True, "none": None}, "2", "fake@abc")


def _packets(n: int, seed: int = 1) -> list[tuple[Packet, dict | None]]:
    import random

    rnd = random.Random(seed)
    out = []
    for i in range(n):
        data = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 40)))
        metrics = {"bits": 8 * len(data), "psnr_y": 30 + i, "ms_ssim": 0.9} if i % 3 != 1 else None
        out.append((Packet(data, i, 2 * i if i != 2 else None, i % 2 == 0), metrics))
    return out


def _write(path: Path, n: int, header: StreamHeader = HDR) -> list[tuple[Packet, dict | None]]:
    pk = _packets(n)
    with ClcWriter(path, header) as w:
        for p, m in pk:
            w.write(p, m)
    return pk


# ------------------------------------------------------------ independent builder (spec)

def _crc(b: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(b))


def _header_json(fmt: VideoFormat = FMT, **over) -> bytes:
    obj = {"codec": "fake", "codec_version": "2", "model": "fake@abc",
           "options": {"qp": 32, "mode": "fast", "gain": 0.5, "flag": True, "none": None},
           "format": {"width": fmt.width, "height": fmt.height, "chroma": fmt.chroma, "bit_depth": fmt.bit_depth,
                      "fps_num": fmt.fps.numerator, "fps_den": fmt.fps.denominator, "matrix": fmt.matrix,
                      "range": fmt.range}}
    obj.update(over)
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def _record(payload: bytes, meta: bytes = b"", index: int = 0, pts: int = -(1 << 63), flags: int = 1,
            plen: int | None = None, mlen: int | None = None) -> bytes:
    head = struct.pack("<IIIqH", len(payload) if plen is None else plen, len(meta) if mlen is None else mlen,
                       index, pts, flags)
    return head + payload + meta + _crc(head + payload + meta)


def _build(hjson: bytes, records: list[bytes], *, count: int | None = None, version: int = 1, flags: int = 0,
           offsets: list[int] | None = None, hlen: int | None = None) -> bytes:
    n = len(records) if count is None else count
    head = b"\x89CLC\r\n\x1a\n" + struct.pack("<HHII", version, flags, n, len(hjson) if hlen is None else hlen) + hjson
    out = head + _crc(head)
    offs = []
    for r in records:
        offs.append(len(out))
        out += r
    offs = offs if offsets is None else offsets
    index = struct.pack(f"<{len(offs)}Q", *offs)
    ioff = len(out)
    out += index + _crc(index)
    t = b"CLCINDEX" + struct.pack("<QI", ioff, n)
    return out + t + _crc(t)


def _open_all(path: Path) -> tuple[StreamHeader, list[Packet]]:
    with ClcReader(path) as r:
        return r.header, list(r)


# ------------------------------------------------------------ round trip and layout

def test_crc32_is_the_published_one() -> None:
    assert zlib.crc32(b"123456789") == 0xCBF43926  # the CRC-32 check value (ISO-HDLC)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a.clc"
    pk = _write(path, 7)
    with open_clc(path) as r:
        assert r.header == HDR
        assert r.format == FMT and r.format.fps == Fraction(30000, 1001)
        assert len(r) == r.frame_count == 7
        got = list(r)
    for (p, m), q in zip(pk, got, strict=True):
        assert (q.data, q.index, q.pts, q.keyframe) == (p.data, p.index, p.pts, p.keyframe)
        assert q.props == (m or {})
    assert [f.name for f in tmp_path.iterdir()] == ["a.clc"]  # no temporary left


def test_bytes_match_the_spec(tmp_path: Path) -> None:
    path = tmp_path / "a.clc"
    pk = _write(path, 4)
    recs = []
    for p, m in pk:
        meta = json.dumps(m, separators=(",", ":")).encode() if m else b""
        recs.append(_record(p.data, meta, p.index, -(1 << 63) if p.pts is None else p.pts, int(p.keyframe)))
    assert path.read_bytes() == _build(_header_json(), recs)


def test_options_dataclass_and_nonfinite_metrics(tmp_path: Path) -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Opts:
        quality: int = 3
        name: str = "x"

    hdr = StreamHeader("fake", VideoFormat(16, 16, "400"), Opts())
    assert hdr.options == {"quality": 3, "name": "x"}
    path = tmp_path / "b.clc"
    with ClcWriter(path, hdr) as w:
        w.write(Packet(b"abc", 0), {"psnr_y": math.inf, "psnr_u": -math.inf, "x": math.nan, "bits": 24})
    with ClcReader(path) as r:
        props = r.read_packet(0).props
    assert props["psnr_y"] == math.inf and props["psnr_u"] == -math.inf and math.isnan(props["x"])
    assert props["bits"] == 24 and isinstance(props["bits"], int)
    assert b'"psnr_y":"Infinity"' in path.read_bytes()  # JSON has no inf literal (spec)


def test_metrics_keep_numbers_only(tmp_path: Path) -> None:
    path = tmp_path / "p.clc"
    with ClcWriter(path, HDR) as w:
        w.write(Packet(b"ab", 0, props={"bits": 16, "encode_s": 0.25, "pict": "I", "lossless": False}))
        w.write(Packet(b"cd", 1, props={"bits": 16}), {})
        w.write(Packet(b"ef", 2), {"psnr_y": np.float32(40.5), "ms_ssim_y": None, "pict_type": "I", "n": np.int64(3)})
    with ClcReader(path) as r:
        assert [p.props for p in r] == [{"bits": 16, "encode_s": 0.25}, {}, {"psnr_y": 40.5, "n": 3}]


def test_empty_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "e.clc"
    ClcWriter(path, HDR).close()
    with ClcReader(path) as r:
        assert len(r) == 0 and list(r) == []
    assert path.read_bytes() == _build(_header_json(), [])


def test_random_access(tmp_path: Path) -> None:
    path = tmp_path / "a.clc"
    pk = _write(path, 20)
    with ClcReader(path) as r:
        for i in (13, 0, 19, 5, 5, -1, -20):
            assert r.read_packet(i).data == pk[i][0].data
        assert [p.index for p in r.packets(17)] == [17, 18, 19]
        assert [p.index for p in r.packets(3, 6)] == [3, 4, 5]
        assert r.is_keyframe(4) and not r.is_keyframe(5)
        with pytest.raises(IndexError):
            r.read_packet(20)
        with pytest.raises(IndexError):
            r.read_packet(-21)
    with pytest.raises(UsageError, match="closed"):
        r.read_packet(0)


def test_iteration_is_lazy(tmp_path: Path) -> None:
    """Damage in packet 3 surfaces only when packet 3 is read: packets are not preloaded."""
    path = tmp_path / "a.clc"
    _write(path, 5)
    with ClcReader(path) as r:
        start = int(r._offsets[3])
    b = bytearray(path.read_bytes())
    b[start + 23] ^= 0xFF
    path.write_bytes(bytes(b))
    with ClcReader(path) as r:
        it = iter(r)
        assert [next(it).index for _ in range(3)] == [0, 1, 2]
        with pytest.raises(BitstreamError, match=r"packet 3: CRC mismatch"):
            next(it)


def test_writer_abort_and_exception_leave_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.clc"
    w = ClcWriter(path, HDR)
    w.write(Packet(b"1", 0))
    assert not path.exists() and len(list(tmp_path.iterdir())) == 1  # only the temporary
    w.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with ClcWriter(path, HDR) as w:
            w.write(Packet(b"1", 0))
            raise RuntimeError("encoder died")
    assert list(tmp_path.iterdir()) == []


def test_writer_replaces_an_existing_file_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "x.clc"
    _write(path, 2)
    old = path.read_bytes()
    w = ClcWriter(path, HDR)
    w.write(Packet(b"new", 0))
    assert path.read_bytes() == old
    w.close()
    with ClcReader(path) as r:
        assert len(r) == 1


def test_writer_rejects_what_the_reader_would(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="option"):
        StreamHeader("fake", FMT, {"nested": {"a": 1}}).to_json()
    with pytest.raises(UsageError):
        ClcWriter(tmp_path / "x.clc", StreamHeader("", FMT))
    with ClcWriter(tmp_path / "x.clc", HDR) as w:
        with pytest.raises(UsageError, match="metrics"):
            w.write(Packet(b"", 0), {f"k{i}": i for i in range(65)})
        with pytest.raises(UsageError, match="metrics"):
            w.write(Packet(b"", 0), {"": 1.0})
        with pytest.raises(UsageError, match="frame index"):
            w.write(Packet(b"", -1))
    with pytest.raises(UsageError, match="cannot create"):
        ClcWriter(tmp_path / "missing" / "x.clc", HDR)


# ------------------------------------------------------------ damaged and hostile files

def _expect_bad(tmp_path: Path, data: bytes, match: str) -> None:
    path = tmp_path / "bad.clc"
    path.write_bytes(data)
    with pytest.raises(BitstreamError, match=match) as e:
        _open_all(path)
    assert str(path) in str(e.value)


def _good_records(n: int = 3) -> list[bytes]:
    return [_record(bytes([i]) * (5 + i), b'{"bits":8}' if i else b"", i, i) for i in range(n)]


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d[:10], "too short"),
        (lambda d: b"GIF89a" + d[6:], "bad magic"),
        (lambda d: d[:-1], "no valid trailer"),
        (lambda d: d[:-24], "no valid trailer"),
        (lambda d: d[:40], "truncated|CRC|trailer"),
        (lambda d: d + b"\0", "no valid trailer"),
        (lambda d: b"", "too short"),
    ],
)
def test_truncated_or_foreign(tmp_path: Path, mutate, match: str) -> None:
    _expect_bad(tmp_path, mutate(_build(_header_json(), _good_records())), match)


def test_crafted_files_with_valid_crcs(tmp_path: Path) -> None:
    """Hostile fields behind correct CRCs: rejected by the limits, before any allocation."""
    h, r = _header_json(), _good_records()
    big = 0xFFFFFFFF
    cases = [
        (_build(h, r, version=2), "unsupported .clc version 2"),
        (_build(h, r, flags=4), "unknown header flags"),
        (_build(h, r, count=big), "unfinished"),
        (_build(h, r, hlen=big), "stream header length"),
        (_build(h, r, hlen=1 << 16), "truncated"),
        (_build(h, r, count=big - 1), "trailer says|does not fit"),
        (_build(h, r, offsets=[0, 1, 2]), "index offsets"),
        (_build(h, r, offsets=[1 << 63, 1 << 64 - 1, 7]), "index offsets"),
        (_build(h, [r[0], r[1] + r[2]], count=2), "disagree with the index"),
        (_build(h, [_record(b"x", plen=big)]), "exceeds|disagree"),
        (_build(h, [_record(b"x", mlen=5000)]), "metrics length"),
        (_build(h, [_record(b"x", flags=2)]), "unknown flags"),
        (_build(h, [_record(b"x", b'{"a":"b"}')]), "must be a number"),
        (_build(h, [_record(b"x", b'{"a":NaN}')]), "JSON does not allow"),
        (_build(h, [_record(b"x", b'{"a":1,"a":2}')]), "duplicate key"),
        (_build(h, [_record(b"x", b"[" * 4000 + b"]" * 4000)]), "metrics"),
        (_build(h, [_record(b"x", b'{"a":' + b"9" * 4000 + b"}")]), "not valid JSON|number"),
        (_build(h, [_record(b"x", b"\xff\xfe")]), "UTF-8"),
        (_build(b"[" * 30000 + b"]" * 30000, r), "stream header"),
        (_build(_header_json(codec=""), r), "codec"),
        (_build(_header_json(extra=1), r), "exactly the keys"),
        (_build(_header_json(options={"a": [1]}), r), "scalar"),
        (_build(_header_json(options={"a": 1 << 70}), r), "64 bits"),
        (_build(_header_json().replace(b'"gain":0.5', b'"gain":1e999'), r), "finite"),
        (_build(_header_json(format={"width": 1}), r), "format"),
        (_build(_header_json(VideoFormat(32768, 32768, "400")), r), "exceeds"),
        (_build(_header_json(format=json.loads(_header_json())["format"] | {"width": 63}), r), "odd dimension"),
        (_build(_header_json(format=json.loads(_header_json())["format"] | {"fps_den": 0}), r), "fps_den"),
        (_build(_header_json(format=json.loads(_header_json())["format"] | {"bit_depth": True}), r), "bit_depth"),
        (_build(_header_json(format=json.loads(_header_json())["format"] | {"chroma": "411"}), r), "chroma"),
    ]
    for data, match in cases:
        _expect_bad(tmp_path, data, match)
    # and the unmodified pieces do make a valid file
    path = tmp_path / "ok.clc"
    path.write_bytes(_build(h, r))
    hdr, pk = _open_all(path)
    assert hdr == HDR and [p.props for p in pk] == [{}, {"bits": 8}, {"bits": 8}]


def test_reads_file_objects_without_closing_them(tmp_path: Path) -> None:
    path = tmp_path / "a.clc"
    pk = _write(path, 3)
    buf = io.BytesIO(path.read_bytes())
    with ClcReader(buf, name="mem.clc") as r:
        assert [p.data for p in r] == [p.data for p, _ in pk]
    assert not buf.closed
    with pytest.raises(BitstreamError, match=r"^mem\.clc: no valid trailer"):
        ClcReader(io.BytesIO(path.read_bytes()[:-1]), name="mem.clc")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="x.clc: no such file"):
        ClcReader(tmp_path / "x.clc")
    with pytest.raises(InputError, match="cannot open"):
        ClcReader(tmp_path)


# ------------------------------------------------------------ fuzz

def _base_files() -> list[bytes]:
    out = [_build(_header_json(), [])]
    for n in (1, 3):
        out.append(_build(_header_json(), _good_records(n)))
    return out


BASES = _base_files()


def _regions(data: bytes) -> list[tuple[int, int]]:
    """Header, packets, index and trailer of a valid file: mutations aim at each equally."""
    hend = 20 + struct.unpack_from("<I", data, 16)[0] + 4
    ioff = struct.unpack_from("<Q", data, len(data) - 16)[0]
    return [(0, 20), (20, hend), (hend, max(ioff, hend + 1)), (ioff, len(data) - 24), (len(data) - 24, len(data))]


REGIONS = [_regions(b) for b in BASES]
_HOSTILE = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFE, 1 << 31, 1 << 63, (1 << 64) - 1]


@st.composite
def _mutations(draw: st.DrawFn) -> tuple[int, bytes]:
    k = draw(st.integers(0, len(BASES) - 1))
    b = bytearray(BASES[k])
    rnd = draw(st.randoms(use_true_random=False))  # uniform positions; st.integers favours small ones
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "overwrite", "truncate", "insert", "delete", "hostile", "splice"]))
        lo, hi = draw(st.sampled_from(REGIONS[k]))
        pos = min(rnd.randrange(lo, max(hi, lo + 1)), max(len(b) - 1, 0))
        if kind == "flip" and b:
            b[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            b[pos : pos + len(chunk)] = chunk
        elif kind == "truncate":
            del b[pos:]
        elif kind == "insert":
            b[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del b[pos : pos + draw(st.integers(1, 16))]
        elif kind == "hostile":
            v = draw(st.sampled_from(_HOSTILE))
            width = draw(st.sampled_from([2, 4, 8]))
            b[pos : pos + width] = (v % (1 << 8 * width)).to_bytes(width, "little")
        elif kind == "splice":  # a piece of another valid file (valid-looking structure, wrong place)
            other = BASES[draw(st.integers(0, len(BASES) - 1))]
            a = draw(st.integers(0, len(other) - 1))
            b[pos:pos] = other[a : a + draw(st.integers(1, 64))]
    return k, bytes(b)


def _check_mutation(k: int, data: bytes) -> None:
    """In memory (writing 10,000 files costs more than parsing them); the same code reads files."""
    try:
        with ClcReader(io.BytesIO(data), name="fuzz.clc") as r:
            list(r)
    except BitstreamError as e:
        assert str(e).startswith("fuzz.clc: ")
        return
    # A file that parses must be the original: every byte is under a CRC or a size check.
    assert data == BASES[k]


def _fuzz(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None)


@_fuzz(500)
@given(_mutations())
def test_fuzz_mutations_fast(case: tuple[int, bytes]) -> None:
    _check_mutation(*case)


@pytest.mark.slow
@_fuzz(10_000)
@given(_mutations())
def test_fuzz_mutations_10k(case: tuple[int, bytes]) -> None:
    _check_mutation(*case)


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)


@_fuzz(300)
@given(
    hdr=st.one_of(st.binary(max_size=64), _JSONISH.map(lambda o: json.dumps(o).encode()),
                  st.dictionaries(st.sampled_from(["codec", "codec_version", "model", "options", "format"]), _JSONISH)
                  .map(lambda o: json.dumps(o).encode())),
    meta=st.one_of(st.binary(max_size=64), _JSONISH.map(lambda o: json.dumps(o).encode())),
)
def test_fuzz_json_behind_valid_crcs(hdr: bytes, meta: bytes) -> None:
    """Arbitrary JSON (and non-JSON) in the header and metrics, with correct CRCs."""
    for data in (_build(hdr if len(hdr) >= 2 else b"{}", _good_records(1)),
                 _build(_header_json(), [_record(b"p", meta)])):
        try:
            with ClcReader(io.BytesIO(data)) as r:
                h, pk = r.header, list(r)
        except BitstreamError:
            continue
        assert isinstance(h, StreamHeader) and all(isinstance(v, (int, float)) for p in pk for v in p.props.values())

