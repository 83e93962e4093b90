"""The ``.clc`` container: our own file format for codecs without a standard stream.

The byte layout is specified in ``docs/container.md`` (version 1); this module implements
exactly that. A reader trusts nothing: every length is checked against its limit and the
file size before anything is allocated, every record carries a CRC-32, JSON is parsed only
after its size is checked, and every failure is a :class:`BitstreamError` naming the file.

The writer streams packets to a temporary file in the destination folder and renames it
when it is complete, so a reader never sees a half-written file under the final name.

It depends on the base layer only (``VideoFormat``, ``Packet``, errors): packets go in and
come out as the one type every codec speaks, and the pipeline side of the container
(``source.py``, ``sink.py``, ``decode.py`` beside this module) is where codecs come in.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
import tempfile
import zlib
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from codeclab.base.errors import BitstreamError, CodeclabError, InputError, UsageError
from codeclab.base.frame import CHROMA_SHIFT, VideoFormat
from codeclab.base.packet import Packet

__all__ = [
    "MAGIC",
    "VERSION",
    "MAX_PAYLOAD",
    "StreamHeader",
    "ClcWriter",
    "ClcReader",
    "open_clc",
]

MAGIC = b"\x89CLC\r\n\x1a\n"
VERSION = 1
TRAILER_MAGIC = b"CLCINDEX"

MAX_HEADER_JSON = 65_536
MAX_PAYLOAD = 256 << 20
MAX_METRICS_JSON = 4096
MAX_METRICS_KEYS = 64
MAX_OPTION_KEYS = 256
MAX_OPTION_STR = 1024
MAX_DIM = 32_768
MAX_PIXELS = 1 << 28
MAX_FPS_TERM = (1 << 31) - 1
UNFINISHED = 0xFFFFFFFF
PTS_NONE = -(1 << 63)
FLAG_KEYFRAME = 1

_FILE_HDR = struct.Struct("<8sHHII")  # magic, version, flags, packet_count, header_len
_REC_HDR = struct.Struct("<IIIqH")  # payload_len, metrics_len, frame_index, pts, flags
_TRAILER = struct.Struct("<8sQII")  # magic, index_offset, packet_count, crc
_U32 = struct.Struct("<I")
_REC_MIN = _REC_HDR.size + 4

_HEADER_KEYS = {"codec", "codec_version", "model", "options", "format"}
_FORMAT_KEYS = {"width", "height", "chroma", "bit_depth", "fps_num", "fps_den", "matrix", "range"}
_NONFINITE = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


@dataclass(frozen=True)
class StreamHeader:
    """What a decoder needs before the first packet: codec, its options and the format.

    ``options`` may be the codec's options dataclass or a mapping; it is kept as a dict.
    """

    codec: str
    format: VideoFormat
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    codec_version: str = ""
    model: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _options_dict(self.options))

    def to_json(self) -> bytes:
        f = self.format
        obj = {
            "codec": self.codec,
            "codec_version": self.codec_version,
            "model": self.model,
            "options": dict(self.options),
            "format": {
                "width": f.width,
                "height": f.height,
                "chroma": f.chroma,
                "bit_depth": f.bit_depth,
                "fps_num": f.fps.numerator,
                "fps_den": f.fps.denominator,
                "matrix": f.matrix,
                "range": f.range,
            },
        }
        try:
            data = json.dumps(obj, separators=(",", ":"), allow_nan=False, sort_keys=True).encode()
            _parse_header(data)  # the writer obeys the reader's rules
        except (_Bad, TypeError, ValueError) as e:
            raise UsageError(f"cannot store this stream header in a .clc file: {e}") from None
        if len(data) > MAX_HEADER_JSON:
            raise UsageError(f"stream header is {len(data)} bytes of JSON, the limit is {MAX_HEADER_JSON}")
        return data


def _options_dict(options: Any) -> dict[str, Any]:
    """Codec options (the codec's options dataclass or a mapping) as a plain dict."""
    if options is None:
        return {}
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    return dict(options)


# ---------------------------------------------------------------------------- parsing


class _Bad(Exception):
    """Internal: a schema violation; the caller turns it into a BitstreamError."""


def _loads(data: bytes, what: str) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad(f"{what} is not UTF-8") from None

    def no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d = dict(pairs)
        if len(d) != len(pairs):
            raise _Bad(f"{what} has a duplicate key")
        return d

    def no_literal(name: str) -> Any:
        raise _Bad(f"{what} contains {name}, which JSON does not allow")

    try:
        return json.loads(text, object_pairs_hook=no_dupes, parse_constant=no_literal)
    except _Bad:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError, int digit limit, deep nesting
        raise _Bad(f"{what} is not valid JSON ({str(e)[:80]})") from None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _str(d: dict[str, Any], key: str, what: str, lo: int, hi: int) -> str:
    v = d[key]
    if not isinstance(v, str) or not lo <= len(v) <= hi:
        raise _Bad(f"{what}: {key} must be a string of {lo}-{hi} characters")
    return v


def _int(d: dict[str, Any], key: str, what: str, lo: int, hi: int) -> int:
    v = d[key]
    if not _is_int(v) or not lo <= v <= hi:
        raise _Bad(f"{what}: {key} must be an integer in {lo}..{hi}, got {str(v)[:40]}")
    return v


def _parse_header(data: bytes) -> StreamHeader:
    obj = _loads(data, "stream header")
    if not isinstance(obj, dict) or set(obj) != _HEADER_KEYS:
        raise _Bad(f"stream header must be an object with exactly the keys {sorted(_HEADER_KEYS)}")
    codec = _str(obj, "codec", "stream header", 1, 64)
    codec_version = _str(obj, "codec_version", "stream header", 0, 256)
    model = _str(obj, "model", "stream header", 0, 256)
    opts = obj["options"]
    if not isinstance(opts, dict) or len(opts) > MAX_OPTION_KEYS:
        raise _Bad(f"stream header: options must be an object of at most {MAX_OPTION_KEYS} keys")
    for k, v in opts.items():
        if len(k) > 64 or not (v is None or isinstance(v, (bool, int, float, str))):
            raise _Bad(f"stream header: option {k[:64]!r} must be a scalar with a name of at most 64 characters")
        if isinstance(v, str) and len(v) > MAX_OPTION_STR:
            raise _Bad(f"stream header: option {k!r} is longer than {MAX_OPTION_STR} characters")
        if _is_int(v) and abs(v) >= 1 << 63:
            raise _Bad(f"stream header: option {k!r} does not fit 64 bits")
        if isinstance(v, float) and not math.isfinite(v):  # 1e999 parses as inf
            raise _Bad(f"stream header: option {k!r} is not a finite number")
    f = obj["format"]
    if not isinstance(f, dict) or set(f) != _FORMAT_KEYS:
        raise _Bad(f"stream header: format must be an object with exactly the keys {sorted(_FORMAT_KEYS)}")
    w = _int(f, "width", "format", 1, MAX_DIM)
    h = _int(f, "height", "format", 1, MAX_DIM)
    if w * h > MAX_PIXELS:
        raise _Bad(f"format: {w}x{h} exceeds {MAX_PIXELS} pixels")
    chroma = f["chroma"]
    if chroma not in CHROMA_SHIFT:
        raise _Bad(f"format: unknown chroma {str(chroma)[:16]!r}")
    depth = _int(f, "bit_depth", "format", 8, 16)
    num = _int(f, "fps_num", "format", 1, MAX_FPS_TERM)
    den = _int(f, "fps_den", "format", 1, MAX_FPS_TERM)
    matrix = _str(f, "matrix", "format", 1, 32)
    rng = f["range"]
    if rng not in ("limited", "full"):
        raise _Bad(f"format: range must be 'limited' or 'full', got {str(rng)[:16]!r}")
    try:
        fmt = VideoFormat(w, h, chroma, depth, Fraction(num, den), matrix, rng)
    except CodeclabError as e:
        raise _Bad(f"format: {e}") from None
    return StreamHeader(codec, fmt, opts, codec_version, model)


def _metrics_to_json(metrics: Mapping[str, Any]) -> bytes:
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
        out[str(k)] = v
    data = json.dumps(out, separators=(",", ":"), allow_nan=False).encode()
    _parse_metrics(data)
    return data


def _parse_metrics(data: bytes) -> dict[str, float | int]:
    obj = _loads(data, "metrics")
    if not isinstance(obj, dict) or len(obj) > MAX_METRICS_KEYS:
        raise _Bad(f"metrics must be an object of at most {MAX_METRICS_KEYS} keys")
    out: dict[str, float | int] = {}
    for k, v in obj.items():
        if not 1 <= len(k) <= 64:
            raise _Bad("metrics: key names must have 1-64 characters")
        if isinstance(v, str) and v in _NONFINITE:
            v = _NONFINITE[v]
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or (_is_int(v) and abs(v) >= 1 << 63):
            raise _Bad(f"metrics: {k!r} must be a number, got {str(v)[:40]!r}")
        out[k] = v
    return out


# ---------------------------------------------------------------------------- writer


class ClcWriter:
    """Streams packets into a ``.clc`` file; atomic (temporary name, renamed on close).

    Use as a context manager: a clean exit closes (finishes and renames), an exception
    aborts (deletes the temporary file). The header goes to disk with the first packet, so
    :meth:`amend_header` can still fill in what only the encoder knows (a model id).
    """

    def __init__(self, path: str | os.PathLike[str], header: StreamHeader) -> None:
        self.path = Path(path)
        self.header = header
        self._f: BinaryIO | None = None
        self._json = header.to_json()
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        except OSError as e:
            raise UsageError(f"{self.path}: cannot create the output file ({e.strerror or e})") from None
        self._tmp = Path(tmp)
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would make the finished file private
        self._f = os.fdopen(fd, "w+b")
        self._offsets = array("Q")
        self._pos = 0  # end of what is written; 0: header not written yet

    def amend_header(self, **changes: Any) -> None:
        """Change header fields (``model="..."``...) before the first packet is written."""
        if self._pos:
            raise UsageError(f"{self.path}: the stream header is already written")
        header = dataclasses.replace(self.header, **changes)
        self._json = header.to_json()
        self.header = header

    def _start(self, f: BinaryIO) -> None:
        if not self._pos:
            head = _FILE_HDR.pack(MAGIC, VERSION, 0, UNFINISHED, len(self._json)) + self._json
            f.write(head + _U32.pack(zlib.crc32(head)))
            self._pos = len(head) + 4

    def write(self, packet: Packet, metrics: Mapping[str, Any] | None = None) -> None:
        """Append one packet and its per-frame metrics record.

        ``metrics=None`` stores the packet's ``props`` (bits, encode_s, qp... as the encoder
        set them); pass a dict (PSNR, MS-SSIM measured on the decoded frame...) to store that
        instead, ``{}`` to store none. Only numbers are stored: ``None``, strings (a picture
        type) and booleans are left out, as the format has no place for them.
        """
        f = self._file()
        metrics = {k: v for k, v in (packet.props if metrics is None else metrics).items()
                   if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))}
        data = bytes(packet.data)
        if len(data) > MAX_PAYLOAD:
            raise UsageError(f"{self.path}: packet {packet.index} is {len(data)} bytes, the limit is {MAX_PAYLOAD}")
        if not 0 <= packet.index <= 0xFFFFFFFF:
            raise UsageError(f"{self.path}: frame index {packet.index} does not fit 32 bits")
        if len(self._offsets) >= UNFINISHED - 1:
            raise UsageError(f"{self.path}: too many packets")
        pts = PTS_NONE if packet.pts is None else int(packet.pts)
        if packet.pts is not None and not PTS_NONE < pts < 1 << 63:
            raise UsageError(f"{self.path}: pts {pts} of packet {packet.index} does not fit 64 bits")
        try:
            meta = _metrics_to_json(metrics) if metrics else b""
        except (_Bad, TypeError, ValueError) as e:
            raise UsageError(f"{self.path}: metrics of packet {packet.index}: {e}") from None
        if len(meta) > MAX_METRICS_JSON:
            raise UsageError(f"{self.path}: metrics of packet {packet.index} take {len(meta)} bytes, "
                             f"the limit is {MAX_METRICS_JSON}")
        head = _REC_HDR.pack(len(data), len(meta), packet.index, pts, FLAG_KEYFRAME if packet.keyframe else 0)
        crc = zlib.crc32(meta, zlib.crc32(data, zlib.crc32(head)))
        self._start(f)
        f.write(head)
        f.write(data)
        f.write(meta)
        f.write(_U32.pack(crc))
        self._offsets.append(self._pos)
        self._pos += len(head) + len(data) + len(meta) + 4

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def packets_written(self) -> int:
        return len(self._offsets)

    @property
    def format(self) -> VideoFormat:
        return self.header.format

    def close(self) -> Path:
        """Write index and trailer, set the packet count, rename into place."""
        if self._f is None:
            return self.path
        f = self._f
        try:
            self._start(f)
            n = len(self._offsets)
            index = np.asarray(self._offsets, "<u8").tobytes()
            f.write(index + _U32.pack(zlib.crc32(index)))
            t = _TRAILER.pack(TRAILER_MAGIC, self._pos, n, 0)[:-4]
            f.write(t + _U32.pack(zlib.crc32(t)))
            head = _FILE_HDR.pack(MAGIC, VERSION, 0, n, len(self._json)) + self._json
            f.seek(0)  # now that the count is known: patch it and the header CRC
            f.write(head + _U32.pack(zlib.crc32(head)))
            f.flush()
            os.fsync(f.fileno())
            f.close()
            self._f = None
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Forget everything written: close and delete the temporary file."""
        if self._f is not None:
            self._f.close()
            self._f = None
        self._tmp.unlink(missing_ok=True)

    def _file(self) -> BinaryIO:
        if self._f is None:
            raise UsageError(f"{self.path}: writer is already closed")
        return self._f

    def __enter__(self) -> ClcWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # an abandoned writer leaves no temporary file behind
        if getattr(self, "_f", None) is not None:
            self.abort()


# ---------------------------------------------------------------------------- reader


class ClcReader:
    """Reads a ``.clc`` file: header and index on open, packets lazily on demand.

    ``source`` is a path, or a seekable binary file object (``io.BytesIO``...) that the
    reader then uses but does not close; ``name`` names it in error messages.
    """

    def __init__(self, source: str | os.PathLike[str] | BinaryIO, *, name: str | None = None) -> None:
        self._owns = not hasattr(source, "read")
        if not self._owns:
            self.path = Path(name or getattr(source, "name", None) or "<stream>")
            self._f: BinaryIO | None = source  # type: ignore[assignment]
            self._open()
            return
        self.path = Path(source)  # type: ignore[arg-type]
        try:
            self._f = open(self.path, "rb")
        except FileNotFoundError:
            raise InputError(f"{self.path}: no such file") from None
        except OSError as e:  # a directory, no permission...
            raise InputError(f"{self.path}: cannot open ({e.strerror or e})") from None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _err(self, msg: str) -> BitstreamError:
        return BitstreamError(f"{self.path}: {msg}")

    def _read_at(self, offset: int, n: int) -> bytes:
        f = self._f
        if f is None:
            raise UsageError(f"{self.path}: reader is closed")
        f.seek(offset)
        data = f.read(n)
        if len(data) != n:
            raise self._err(f"unexpected end of file at byte {offset + len(data)} (file changed while reading?)")
        return data

    def _open(self) -> None:
        f = self._f
        assert f is not None
        size = f.seek(0, os.SEEK_END)
        self.size = size
        if size < _FILE_HDR.size:
            raise self._err(f"too short to be a .clc file ({size} bytes)")
        magic, version, flags, count, hlen = _FILE_HDR.unpack(self._read_at(0, _FILE_HDR.size))
        if magic != MAGIC:
            raise self._err("not a .clc file (bad magic)")
        if version != VERSION:
            raise self._err(f"unsupported .clc version {version} (this reader knows {VERSION})")
        if flags:
            raise self._err(f"unknown header flags 0x{flags:04x}")
        if count == UNFINISHED:
            raise self._err("unfinished file (the writer never completed it)")
        if not 2 <= hlen <= MAX_HEADER_JSON:
            raise self._err(f"stream header length {hlen} outside 2..{MAX_HEADER_JSON}")
        hend = _FILE_HDR.size + hlen + 4
        if size < hend + 4 + _TRAILER.size:
            raise self._err(f"truncated: {size} bytes cannot hold a {hlen}-byte stream header, index and trailer")
        head = self._read_at(0, hend)
        if zlib.crc32(head[:-4]) != _U32.unpack(head[-4:])[0]:
            raise self._err("stream header CRC mismatch (corrupted)")
        try:
            self.header = _parse_header(head[_FILE_HDR.size:-4])
        except _Bad as e:
            raise self._err(str(e)) from None

        trailer = self._read_at(size - _TRAILER.size, _TRAILER.size)
        tmagic, ioff, tcount, tcrc = _TRAILER.unpack(trailer)
        if tmagic != TRAILER_MAGIC or zlib.crc32(trailer[:-4]) != tcrc:
            raise self._err("no valid trailer (truncated or not a finished .clc file)")
        if tcount != count:
            raise self._err(f"trailer says {tcount} packets, header says {count}")
        if ioff + 8 * count + 4 + _TRAILER.size != size or ioff < hend:
            raise self._err(f"index of {count} packets at byte {ioff} does not fit a {size}-byte file")
        raw = self._read_at(ioff, 8 * count + 4)
        if zlib.crc32(raw[:-4]) != _U32.unpack(raw[-4:])[0]:
            raise self._err("index CRC mismatch (corrupted)")
        offs = np.frombuffer(raw, "<u8", count)
        if count == 0:
            if ioff != hend:
                raise self._err("no packets, but bytes between the header and the index")
        elif offs[0] != hend or np.any(offs >= ioff):
            raise self._err("index offsets are not records between the header and the index")
        offs = offs.astype(np.int64)  # safe now: every offset < ioff < file size
        if count and np.any(np.diff(np.append(offs, ioff)) < _REC_MIN):
            raise self._err("index offsets are not consecutive records of at least 26 bytes")
        self._offsets = offs
        self._index_offset = ioff

    @property
    def format(self) -> VideoFormat:
        return self.header.format

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def frame_count(self) -> int:
        """Number of packets (= frames for intra codecs), from the header."""
        return len(self._offsets)

    def _span(self, i: int) -> tuple[int, int]:
        start = int(self._offsets[i])
        end = int(self._offsets[i + 1]) if i + 1 < len(self._offsets) else self._index_offset
        return start, end

    def _record_header(self, i: int, head: bytes | None = None) -> tuple[int, int, int, int, int]:
        """Fields of record *i*'s header (read here unless given), checked against limits and index."""
        start, end = self._span(i)
        if head is None:
            head = self._read_at(start, _REC_HDR.size)
        plen, mlen, fidx, pts, flags = _REC_HDR.unpack_from(head)
        if plen > MAX_PAYLOAD:
            raise self._err(f"packet {i}: payload length {plen} exceeds {MAX_PAYLOAD}")
        if mlen > MAX_METRICS_JSON:
            raise self._err(f"packet {i}: metrics length {mlen} exceeds {MAX_METRICS_JSON}")
        if _REC_MIN + plen + mlen != end - start:
            raise self._err(f"packet {i}: record lengths ({plen}+{mlen}) disagree with the index")
        if flags & ~FLAG_KEYFRAME:
            raise self._err(f"packet {i}: unknown flags 0x{flags:04x}")
        return plen, mlen, fidx, pts, flags

    def is_keyframe(self, i: int) -> bool:
        """Keyframe flag of packet *i* without reading its payload."""
        self._check_index(i)
        return bool(self._record_header(i)[4] & FLAG_KEYFRAME)

    def _check_index(self, i: int) -> int:
        n = len(self._offsets)
        if not -n <= i < n:
            raise IndexError(f"{self.path}: packet {i} out of range (file has {n})")
        return i % n if n else i

    def read_packet(self, i: int) -> Packet:
        """Packet *i* (0-based, negative counts from the end); ``props`` holds its metrics."""
        i = self._check_index(i)
        start, end = self._span(i)
        if end - start > _REC_MIN + MAX_PAYLOAD + MAX_METRICS_JSON:
            self._record_header(i)  # names the field that is out of bounds
            raise self._err(f"packet {i}: record of {end - start} bytes exceeds the limits")
        rec = self._read_at(start, end - start)  # bounded just above: one read per packet
        plen, mlen, fidx, pts, flags = self._record_header(i, rec)
        if zlib.crc32(memoryview(rec)[:-4]) != _U32.unpack(rec[-4:])[0]:
            raise self._err(f"packet {i}: CRC mismatch (corrupted)")
        p0 = _REC_HDR.size
        props: dict[str, Any] = {}
        if mlen:
            try:
                props = _parse_metrics(rec[p0 + plen : p0 + plen + mlen])
            except _Bad as e:
                raise self._err(f"packet {i}: {e}") from None
        return Packet(rec[p0 : p0 + plen], fidx, None if pts == PTS_NONE else pts, bool(flags & FLAG_KEYFRAME), props)

    def packets(self, start: int = 0, stop: int | None = None) -> Iterator[Packet]:
        """Packets ``start..stop-1`` in file order, one at a time."""
        n = len(self._offsets)
        stop = n if stop is None else min(stop, n)
        for i in range(max(start, 0), stop):
            yield self.read_packet(i)

    def __iter__(self) -> Iterator[Packet]:
        return self.packets()

    def close(self) -> None:
        if self._f is not None and self._owns:
            self._f.close()
        self._f = None

    def __enter__(self) -> ClcReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_clc(path: str | os.PathLike[str]) -> ClcReader:
    """Open a ``.clc`` file for reading (a :class:`ClcReader`, usable with ``with``)."""
    return ClcReader(path)
