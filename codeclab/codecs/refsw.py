"""The reference encoders as codecs: HM 16.20 (HEVC, codec ``hm``) and VTM 23.13 (VVC, ``vtm``).

They are anchors: our codecs are measured against the standards' own reference software in
the same run (BD-rate, CPU seconds per picture). The encoders are external binaries
(``../shared/tools/hm``, ``../shared/tools/vtm``, see the READMEs there), run once per
frame: every frame is coded independently as one all-intra picture, with the command line
of the JVET common test conditions (``-c <all-intra cfg> -f 1 -q QP`` and the bit depths).

Binary lookup, when the encoder is made (not at import): the ``binary`` option, else the
environment variable ``CODECLAB_HM`` / ``CODECLAB_VTM``, else the shared tools folder next
to the repository. The first of these that is given must exist: a missing binary is a
one-line :class:`~codeclab.base.errors.CodecError` naming the path and how to set it.

Formats: 4:2:0, 8 or 10 bit. HM codes at the source's depth (Main / Main 10 cfg); VTM at an
internal depth of 10 bits, as the CTC. Sizes that are not a multiple of the minimum CU are
padded by the encoder and cropped by a conformance window (``--ConformanceWindowMode=1``).

HM's decoder (:func:`hm_decode`, ``TAppDecoderStatic`` from ``$CODECLAB_HM_DECODER`` or the
shared tools) is a second decoder, independent of FFmpeg, for the conformance tests of our
HEVC encoder: its pictures and its checks of decoded picture hash SEIs.

Decoding: by FFmpeg (``hevc`` / ``vvc``), so metrics measure what a real decoder returns.
``hm`` streams are HEVC Annex-B and are muxed like x265's; FFmpeg cannot mux VVC here, so
``vtm`` packets go into our ``.clc`` container.

Packet ``props``: ``bits``, ``qp``, ``pict_type``, ``encode_s`` (wall time of the run),
``encoder_cpu_s`` (the binary's "Total Time": its process CPU seconds) and the encoder's
own ``ref_psnr_y/u/v`` from its POC line. Those are measured as the binary does: HM at the
coded depth, VTM at its internal 10 bits (the source x4 against the 10-bit reconstruction),
both with the peak 255 << (depth - 8) and 999.99 for identical planes.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codeclab.base.errors import CodecError, FormatError, UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.base.packet import Packet
from codeclab.codecs.base import CodecSpec

__all__ = ["HM_SPEC", "VTM_SPEC", "HMDecoded", "HMOptions", "RefEncoder", "VTMOptions", "find_binary", "hm_decode"]

#: the team's shared tools: ``<repository>/../shared/tools``
TOOLS = Path(__file__).resolve().parents[2].parent / "shared" / "tools"

_POC_LINE = re.compile(r"^POC\s+\d+.*?\)\s+(\d+)\s+bits\s+\[Y\s+(\S+)\s+dB\s+U\s+(\S+)\s+dB\s+V\s+(\S+)\s+dB",
                       re.MULTILINE)
_TOTAL_TIME = re.compile(r"Total Time:\s+([0-9.]+)\s+sec")


@dataclass(frozen=True)
class HMOptions:
    """Options of codec ``hm``.

    qp: QP of the picture (-6*(depth-8) .. 51); rdoq: HM's RDOQ (off adds ``--RDOQ=0
    --RDOQTS=0``, for the RDOQ on/off BD-rate); cfg: HM configuration file (default the
    all-intra Main / Main10 cfg next to the binary); binary: path of ``TAppEncoderStatic``
    (default ``$CODECLAB_HM``, else ``../shared/tools/hm/TAppEncoderStatic``).
    """

    qp: int = 32
    rdoq: bool = True
    cfg: str | None = None
    binary: str | None = None

    def __post_init__(self) -> None:
        if not -12 <= self.qp <= 51:
            raise UsageError(f"hm: qp {self.qp} outside -12..51")


@dataclass(frozen=True)
class VTMOptions:
    """Options of codec ``vtm``.

    qp: QP of the picture (-12 .. 63; VTM codes at 10 bits internally); cfg: VTM
    configuration file (default ``encoder_intra_vtm.cfg`` next to the binary); binary: path
    of ``EncoderApp`` (default ``$CODECLAB_VTM``, else ``../shared/tools/vtm/EncoderApp``).
    """

    qp: int = 32
    cfg: str | None = None
    binary: str | None = None

    def __post_init__(self) -> None:
        if not -12 <= self.qp <= 63:
            raise UsageError(f"vtm: qp {self.qp} outside -12..63")


@dataclass(frozen=True)
class _Tool:
    """Where one reference binary lives and how it is told the bit depths."""

    codec: str  # registry name, "hm"
    label: str  # "HM 16.20"
    env: str  # environment variable with the binary's path
    default: Path  # binary in the shared tools folder
    internal_depth: int | None  # None: the source's depth
    kind: str = "encoder"  # or "decoder" (no codec option names it: only the env variable)

    def cfg_name(self, depth: int) -> str:
        if self.codec == "hm":
            return "encoder_intra_main.cfg" if depth == 8 else "encoder_intra_main10.cfg"
        return "encoder_intra_vtm.cfg"


_HM = _Tool("hm", "HM 16.20", "CODECLAB_HM", TOOLS / "hm" / "TAppEncoderStatic", None)
_VTM = _Tool("vtm", "VTM 23.13", "CODECLAB_VTM", TOOLS / "vtm" / "EncoderApp", 10)
#: HM's decoder: a second decoder, independent of FFmpeg, for the conformance of our streams
_HM_DECODER = _Tool("hm", "HM 16.20", "CODECLAB_HM_DECODER", TOOLS / "hm" / "TAppDecoderStatic", None, "decoder")


def find_binary(tool: _Tool, option: str | None) -> Path:
    """The binary: the ``binary`` option, else the env variable, else the shared tools.

    The first one given is the one used (no silent fallback from a path someone set).
    """
    if option:
        path, how = Path(option).expanduser(), "option binary"
    elif os.environ.get(tool.env):
        path, how = Path(os.environ[tool.env]).expanduser(), f"${tool.env}"
    else:
        path, how = tool.default, "default location"
    if not (path.is_file() and os.access(path, os.X_OK)):
        hint = f"set -x binary=PATH or {tool.env}=PATH" if tool.kind == "encoder" else f"set {tool.env}=PATH"
        raise CodecError(f"{tool.codec}: {tool.label} {tool.kind} not found at {path} ({how}); {hint}")
    return path.resolve()


def _find_cfg(tool: _Tool, option: str | None, binary: Path, depth: int) -> Path:
    path = Path(option).expanduser() if option else binary.parent / tool.cfg_name(depth)
    if not path.is_file():
        how = "option cfg" if option else f"default, next to {binary.name}"
        raise CodecError(f"{tool.codec}: configuration file {path} not found ({how}); set -x cfg=PATH")
    return path.resolve()


def _write_yuv(path: Path, planes: tuple[np.ndarray, ...], depth: int) -> None:
    """Planar raw samples as the reference software reads them: bytes, or little-endian 16-bit."""
    dtype = np.dtype(np.uint8) if depth == 8 else np.dtype("<u2")
    with open(path, "wb") as fh:
        fh.writelines(np.ascontiguousarray(p, dtype).tobytes() for p in planes)


def _read_yuv(path: Path, width: int, height: int, depth: int) -> list[tuple[np.ndarray, ...]]:
    """4:2:0 pictures of a raw file as the reference software writes them (bytes, or
    little-endian 16-bit); a partial last picture is dropped."""
    dtype = np.dtype(np.uint8) if depth == 8 else np.dtype("<u2")
    data = np.fromfile(path, dtype) if path.exists() else np.zeros(0, dtype)
    shapes = [(height, width), (height // 2, width // 2), (height // 2, width // 2)]
    sizes = [h * w for h, w in shapes]
    pics = []
    for k in range(data.size // sum(sizes)):
        pos, planes = k * sum(sizes), []
        for shape, n in zip(shapes, sizes):
            planes.append(data[pos:pos + n].reshape(shape).astype(np.uint8 if depth == 8 else np.uint16))
            pos += n
        pics.append(tuple(planes))
    return pics


def _float(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        return float("nan")


def _parse_log(text: str) -> dict[str, Any]:
    """``encoder_cpu_s`` and ``ref_psnr_y/u/v`` from the encoder's output (what it prints)."""
    out: dict[str, Any] = {}
    m = _POC_LINE.search(text)
    if m:
        out["ref_psnr_y"], out["ref_psnr_u"], out["ref_psnr_v"] = (_float(g) for g in m.groups()[1:])
    t = _TOTAL_TIME.search(text)
    if t:
        out["encoder_cpu_s"] = float(t.group(1))
    return out


def _last_line(text: str) -> str:
    """The line that says why: the last one naming an error, else the last one (warning boxes skipped)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("**")]
    errors = [ln for ln in lines if "error:" in ln.lower()]
    return (errors or lines or ["no output"])[-1]


#: HM's check of a decoded picture hash SEI, one per picture: [MD5:<Y>,<Cb>,<Cr>,(OK)] with
#: the hashes it computed, or ,(***ERROR***)] followed by the received ones
_HM_MD5 = re.compile(r"\[MD5:([0-9a-f]{32}),([0-9a-f]{32}),([0-9a-f]{32}),\((OK|\*\*\*ERROR\*\*\*)\)\]")


@dataclass(frozen=True)
class HMDecoded:
    """What HM's decoder made of a stream.

    pictures: output order, cropped by the conformance window, at the asked bit depth;
    md5: per picture that carries a decoded picture hash SEI, the (Y, Cb, Cr) MD5s HM
    computed and whether they matched the SEI; returncode and log: HM's own (non-zero on a
    hash mismatch or a broken stream).
    """

    pictures: list[tuple[np.ndarray, ...]]
    md5: list[tuple[str, str, str, bool]]
    returncode: int
    log: str


def hm_decode(data: bytes, width: int, height: int, bit_depth: int) -> HMDecoded:
    """Decode an HEVC Annex-B stream (4:2:0, ``width`` x ``height`` after cropping) with HM's
    decoder, ``TAppDecoderStatic -b s.bin -o rec.yuv -d bit_depth`` in a private temp dir.

    The binary: ``$CODECLAB_HM_DECODER``, else ``../shared/tools/hm/TAppDecoderStatic``
    (:func:`find_binary`; a missing one is a CodecError naming the path).
    """
    binary = find_binary(_HM_DECODER, None)
    with tempfile.TemporaryDirectory(prefix="codeclab-hm-dec-") as tmp:
        stream, rec = Path(tmp) / "s.bin", Path(tmp) / "rec.yuv"
        stream.write_bytes(data)
        cmd = [str(binary), "-b", str(stream), "-o", str(rec), "-d", str(bit_depth)]
        try:
            r = subprocess.run(cmd, check=False, capture_output=True, text=True, errors="replace", cwd=tmp,
                               timeout=600)
        except OSError as e:
            raise CodecError(f"hm: cannot run {binary} ({e.strerror or e})") from None
        log = r.stdout + "\n" + r.stderr
        md5 = [(y, cb, cr, ok == "OK") for y, cb, cr, ok in _HM_MD5.findall(log)]
        return HMDecoded(_read_yuv(rec, width, height, bit_depth), md5, r.returncode, log)


class RefEncoder:
    """Frame -> one all-intra access unit by a run of the reference encoder in a private temp dir."""

    def __init__(self, tool: _Tool, fmt: VideoFormat, opts: HMOptions | VTMOptions) -> None:
        if fmt.chroma != "420":
            raise FormatError(f"{tool.codec}: only 4:2:0 is supported, not {fmt.chroma} "
                              "(convert with --to-pix-fmt yuv420p)")
        if fmt.bit_depth not in (8, 10):
            raise FormatError(f"{tool.codec}: codes 8- or 10-bit video, not {fmt.bit_depth}-bit "
                              "(convert with --to-pix-fmt)")
        internal = tool.internal_depth or fmt.bit_depth
        if opts.qp < -6 * (internal - 8):
            raise UsageError(f"{tool.codec}: qp {opts.qp} below {-6 * (internal - 8)} for {internal}-bit coding")
        self.tool, self.fmt, self.opts = tool, fmt, opts
        self.binary = find_binary(tool, opts.binary)
        self.cfg = _find_cfg(tool, opts.cfg, self.binary, fmt.bit_depth)
        d = fmt.bit_depth
        self._args = [f"--InputBitDepth={d}", f"--OutputBitDepth={d}", f"--InternalBitDepth={internal}",
                      "--ConformanceWindowMode=1"]
        if isinstance(opts, HMOptions) and not opts.rdoq:
            self._args += ["--RDOQ=0", "--RDOQTS=0"]
        self._flushed = False

    def _run(self, frame: Frame) -> tuple[bytes, str, float]:
        fmt = self.fmt
        with tempfile.TemporaryDirectory(prefix=f"codeclab-{self.tool.codec}-") as tmp:
            src, bitstream = Path(tmp) / "in.yuv", Path(tmp) / "out.bin"
            _write_yuv(src, frame.planes, fmt.bit_depth)
            cmd = [str(self.binary), "-c", str(self.cfg), "-i", str(src), "-wdt", str(fmt.width),
                   "-hgt", str(fmt.height), "-fr", "1", "-f", "1", "-q", str(self.opts.qp), *self._args,
                   "-b", str(bitstream), "-o", os.devnull]
            t0 = time.perf_counter()
            try:
                r = subprocess.run(cmd, check=False, capture_output=True, text=True, errors="replace", cwd=tmp)
            except OSError as e:
                raise CodecError(f"{self.tool.codec}: cannot run {self.binary} ({e.strerror or e})") from None
            wall = time.perf_counter() - t0
            log = r.stdout + "\n" + r.stderr
            if r.returncode != 0:
                raise CodecError(f"{self.tool.codec}: {self.binary.name} failed on frame {frame.index} "
                                 f"(exit {r.returncode}): {_last_line(log)}")
            try:
                data = bitstream.read_bytes()
            except FileNotFoundError:
                data = b""
            if not data:
                raise CodecError(f"{self.tool.codec}: {self.binary.name} wrote no bitstream for frame "
                                 f"{frame.index}: {_last_line(log)}")
        return data, log, wall

    def encode(self, frame: Frame) -> list[Packet]:
        if self._flushed:
            raise CodecError(f"{self.tool.codec}: encode after flush")
        f = frame.format
        if (f.width, f.height, f.chroma, f.bit_depth) != (self.fmt.width, self.fmt.height, self.fmt.chroma,
                                                          self.fmt.bit_depth):
            raise FormatError(f"{self.tool.codec}: frame {frame.index} is {f}, the stream is {self.fmt}")
        data, log, wall = self._run(frame)
        props: dict[str, Any] = {"bits": 8 * len(data), "qp": float(self.opts.qp), "pict_type": "I",
                                 "encode_s": wall, **_parse_log(log)}
        pts = frame.pts if frame.pts is not None else frame.index
        return [Packet(data, frame.index, pts, True, props)]

    def flush(self) -> list[Packet]:
        self._flushed = True
        return []


def _hm_encoder(fmt: VideoFormat, opts: HMOptions) -> RefEncoder:
    return RefEncoder(_HM, fmt, opts)


def _vtm_encoder(fmt: VideoFormat, opts: VTMOptions) -> RefEncoder:
    return RefEncoder(_VTM, fmt, opts)


def _hm_decoder(fmt: VideoFormat, _opts: HMOptions) -> Any:
    from codeclab.codecs.ffmpeg import FFmpegDecoder

    return FFmpegDecoder("hevc", fmt)


def _vtm_decoder(fmt: VideoFormat, _opts: VTMOptions) -> Any:
    import av

    from codeclab.codecs.ffmpeg import FFmpegDecoder

    try:
        av.codec.Codec("vvc", "r")
    except ValueError:  # av.codec.codec.UnknownCodecError
        raise CodecError("vtm: this FFmpeg (PyAV) has no VVC decoder (FFmpeg 7.1 or later has one)") from None
    return FFmpegDecoder("vvc", fmt)


#: codec ``hm`` of the registry
HM_SPEC = CodecSpec("hm", "HM 16.20, the HEVC reference encoder (external binary), all-intra cfg (Main / Main10), "
                    "RDOQ on/off; decoded by FFmpeg", HMOptions, _hm_encoder, _hm_decoder, "hevc", ".hevc")
#: codec ``vtm`` of the registry (FFmpeg cannot mux VVC here: packets go into .clc)
VTM_SPEC = CodecSpec("vtm", "VTM 23.13, the VVC reference encoder (external binary), all-intra CTC cfg, 10-bit "
                     "internal; decoded by FFmpeg", VTMOptions, _vtm_encoder, _vtm_decoder, None, ".clc")
