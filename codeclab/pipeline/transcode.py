"""The per-frame coding loop and ``transcode``: source -> encoder -> file -> decoder -> metrics.

:func:`code_frames` is the one loop every user of a codec goes through (``transcode``, the
batch evaluation runner, the VapourSynth filters): it encodes each frame, decodes the
packets back with the codec's own decoder (FFmpeg's for standard streams) and measures the
decoded frame against the source. It streams: only the frames the encoder and decoder
still hold (their delay) are kept.

Timing per frame: ``encode_s`` is the wall time of the ``encode(frame)`` call, ``decode_s``
that of the ``decode(packet)`` calls for its packets; time spent in ``flush()`` is shared
among the frames that flush completes. An encoder with look-ahead does work for earlier
frames inside later calls, so per-frame times are indicative; their sums are exact.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeclab.base.errors import CodecError, FormatError, UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.codecs.base import CodecSpec, Decoder, Encoder, Packet, get_codec, make_options
from codeclab.pipeline.io.sources import FrameRange, open_source
from codeclab.pipeline.metrics import MetricsLog, frame_metrics

__all__ = ["CodedFrame", "code_frames", "TranscodeResult", "transcode", "RECON_EXTS", "METRICS_EXTS"]

#: extensions ``recon_path`` may have (decoded frames, see ``sinks.open_sink``)
RECON_EXTS = (".y4m", ".yuv", ".mkv")
#: extensions ``metrics_path`` may have
METRICS_EXTS = (".csv", ".json")


@dataclass
class CodedFrame:
    """One source frame after the round trip: its packets, the decoded picture, its measures.

    ``metrics`` (also readable as ``row``) holds ``frame`` (source index), ``bits``,
    ``psnr_y/u/v``, ``psnr_yuv``, ``mse_*``, ``ms_ssim_y`` (when asked for), ``encode_s``,
    ``decode_s``, and ``qp``/``pict_type`` when the codec reports them.
    """

    source: Frame
    packets: list[Packet]
    decoded: Frame
    metrics: dict[str, Any]
    packet_seq: list[int] = field(default_factory=list)  # each packet's place in decoding order

    @property
    def row(self) -> dict[str, Any]:
        return self.metrics


@dataclass
class _Pending:
    frame: Frame
    packets: list[Packet] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    encode_s: float = 0.0
    decode_s: float = 0.0


def code_frames(frames: Iterable[Frame], spec: CodecSpec, options: Any, *, ms_ssim: bool = True,
                jobs: int = 1) -> Iterator[CodedFrame]:
    """Encode, decode back and measure every frame, in input order, lazily.

    The encoder and decoder are made from the first frame's format; every frame must have
    that format. Decoders return frames in presentation order, so decoded frames are
    matched to source frames in order; packets (which a codec that reorders pictures emits
    in decoding order) are matched by ``Packet.index`` (the source frame's index), else to
    the oldest frame still waiting; ``CodedFrame.packet_seq`` keeps their decoding order.

    ``jobs`` > 1 codes the frames of a ``spec.frame_parallel`` codec in that many worker
    processes (:mod:`codeclab.pipeline.frame_parallel`; same packets, at most 2 x jobs
    frames in flight); decoding and measuring stay here, in order. ``encode_s`` is then
    the wall time of the ``encode(frame)`` call in its worker. Other codecs ignore
    ``jobs``. Close the iterator when stopping early (``contextlib.closing``): that stops
    the workers at once.

    Raises:
        CodecError: the decoder returned more or fewer frames than were coded; a worker
            failed.
        FormatError: a frame's format differs from the first one's.
    """
    dec: Decoder | None = None
    waiting: deque[_Pending] = deque()  # coded, not yet decoded; bounded by codec delay
    emitted = itertools.count()  # packets in the order the encoder emits them (decoding order)

    def attach(packets: list[Packet], seconds: float, current: _Pending | None) -> list[Packet]:
        """Give packets to their frames; spread ``seconds`` of encoder time over them (a call
        that returns earlier frames' packets - a codec that buffers frames - shares its time
        among them by their own ``encode_s``, else it is the current frame's)."""
        owners: list[_Pending] = []
        for p in packets:
            owner = next((w for w in waiting if w.frame.index == p.index), None)
            if owner is None:
                owner = next((w for w in waiting if not w.packets), None)
            if owner is None:
                raise CodecError(f"codec {spec.name}: packet {p.index} matches no frame waiting to be coded")
            owner.packets.append(p)
            owner.seq.append(next(emitted))
            owners.append(owner)
        own = [p.props.get("encode_s") for p in packets]
        if owners and any(o is not current for o in owners) and \
                all(isinstance(v, (int, float)) for v in own) and sum(own) > 0:
            for o, v in zip(owners, own):
                o.encode_s += seconds * v / sum(own)
        elif current is not None:
            current.encode_s += seconds
        elif owners:  # flush: time goes to the frames it completes
            for o in owners:
                o.encode_s += seconds / len(owners)
        return packets

    def decode(packets: list[Packet]) -> Iterator[CodedFrame]:
        assert dec is not None
        for p in packets:
            t0 = time.perf_counter()
            out = dec.decode(p)
            dt = time.perf_counter() - t0
            owner = next((w for w in waiting if any(q is p for q in w.packets)), None)
            if owner is not None:
                owner.decode_s += dt
            yield from emit(out)

    def emit(decoded: list[Frame]) -> Iterator[CodedFrame]:
        for d in decoded:
            if not waiting:
                raise CodecError(f"codec {spec.name}: the decoder returned more frames than were coded")
            w = waiting.popleft()
            yield _finish(w, d, ms_ssim)

    it = iter(frames)
    first = next(it, None)
    if first is None:
        return
    fmt = first.format
    same_format = _same_format(itertools.chain([first], it), fmt)
    events: Iterator[tuple[Frame | None, list[Packet], float]]
    if jobs > 1 and spec.parallel(options):
        from codeclab.pipeline.frame_parallel import encode_in_workers

        dec = spec.make_decoder(fmt, options)
        events = encode_in_workers(same_format, spec, options, jobs)
    else:
        enc = spec.make_encoder(fmt, options)
        dec = spec.make_decoder(fmt, options)
        events = _encode_in_order(same_format, enc)
    with contextlib.closing(events):
        for frame, packets, seconds in events:
            cur = None
            if frame is not None:
                cur = _Pending(frame)
                waiting.append(cur)
            attach(packets, seconds, cur)
            yield from decode(packets)
    t0 = time.perf_counter()
    tail = dec.flush()
    dt = time.perf_counter() - t0
    for w in list(waiting)[: len(tail)]:
        w.decode_s += dt / max(len(tail), 1)
    yield from emit(tail)
    if waiting:
        raise CodecError(f"codec {spec.name}: {len(waiting)} coded frame(s) never came out of the decoder "
                         f"(first: frame {waiting[0].frame.index})")


class _DecodingOrder:
    """Frames come out of :func:`code_frames` in presentation order, but a stream is written
    in decoding order: packets wait here until every packet before them has been written
    (at most the codec's reordering depth)."""

    def __init__(self, write: Any) -> None:
        self._write = write
        self._next = 0
        self._held: dict[int, tuple[Any, ...]] = {}

    def add(self, seq: int, *args: Any) -> None:
        self._held[seq] = args
        while self._next in self._held:
            self._write(*self._held.pop(self._next))
            self._next += 1


def _same_format(frames: Iterable[Frame], fmt: VideoFormat) -> Iterator[Frame]:
    """The frames, each checked to have the stream's format."""
    for frame in frames:
        if frame.format != fmt:
            raise FormatError(f"frame {frame.index} is {frame.format}, the stream started as {fmt}")
        yield frame


def _encode_in_order(frames: Iterable[Frame], enc: Encoder) -> Iterator[tuple[Frame | None, list[Packet], float]]:
    """One encoder in this process: ``(frame, packets, seconds)`` per ``encode`` call, then
    ``(None, packets, seconds)`` for ``flush``; packets may belong to earlier frames."""
    for frame in frames:
        t0 = time.perf_counter()
        packets = enc.encode(frame)
        yield frame, packets, time.perf_counter() - t0
    t0 = time.perf_counter()
    packets = enc.flush()
    yield None, packets, time.perf_counter() - t0


def _finish(w: _Pending, decoded: Frame, ms_ssim: bool) -> CodedFrame:
    src = w.frame
    row: dict[str, Any] = {"frame": src.index, "bits": sum(p.bits for p in w.packets)}
    row.update(frame_metrics(src, decoded, ms_ssim=ms_ssim))
    row["encode_s"] = w.encode_s
    row["decode_s"] = w.decode_s
    qps = [float(p.props["qp"]) for p in w.packets if p.props.get("qp") is not None]
    if qps:
        row["qp"] = sum(qps) / len(qps)
    pict = decoded.props.get("pict_type") or next((p.props["pict_type"] for p in w.packets if "pict_type" in p.props), None)
    if pict is not None:
        row["pict_type"] = pict
    out = Frame(decoded.planes, decoded.format, src.index, src.pts, dict(decoded.props))
    return CodedFrame(src, w.packets, out, row, w.seq)


# ---------------------------------------------------------------------------------------
# transcode


@dataclass(frozen=True)
class TranscodeResult:
    """What ``transcode`` wrote and how the coded frames measured up."""

    output: Path
    codec: str
    format: VideoFormat
    frames: int
    bits: int
    summary: dict[str, float]  # MetricsLog.summary(fps): means, bits_total, bitrate_kbps
    metrics_path: Path | None = None
    recon_path: Path | None = None

    @property
    def bitrate_kbps(self) -> float:
        return float(self.summary.get("bitrate_kbps", float("nan")))


def _check_outputs(src: Path, out: Path, metrics_path: Path | None, recon_path: Path | None) -> None:
    """Reject clashing or unwritable output names before any work is done."""
    named = [p for p in (out, metrics_path, recon_path) if p is not None]
    for p in named:
        if p.exists() and src.exists() and p.resolve() == src.resolve():
            raise UsageError(f"{p}: output would overwrite the input")
        if not p.parent.is_dir():
            raise UsageError(f"{p}: output folder {p.parent} does not exist")
        if p.is_dir():
            raise UsageError(f"{p}: is a directory")
    if len({p.resolve() for p in named}) != len(named):
        raise UsageError(f"{out}: output, metrics and recon must be different files")
    if metrics_path is not None and metrics_path.suffix.lower() not in METRICS_EXTS:
        raise UsageError(f"{metrics_path}: metrics go to .csv or .json")
    if recon_path is not None and recon_path.suffix.lower() not in RECON_EXTS:
        raise UsageError(f"{recon_path}: decoded frames go to {', '.join(RECON_EXTS)} (.mkv: lossless FFV1)")


def _open_packet_out(out: Path, spec: CodecSpec, fmt: VideoFormat, options: Any) -> Any:
    """Standard streams are muxed by FFmpeg; other codecs' packets go into our container."""
    if spec.stream_codec is not None:
        from codeclab.pipeline.io.sinks import open_packet_sink

        return open_packet_sink(out, spec.stream_codec, fmt)
    from codeclab.pipeline.clc.sink import open_clc_sink

    return open_clc_sink(out, spec, fmt, options)


def _progress(total: int | None, label: str, enabled: bool) -> Any:
    from tqdm import tqdm

    on = enabled and sys.stderr.isatty()
    return tqdm(total=total, desc=label, unit="frame", file=sys.stderr, disable=not on, leave=False,
                dynamic_ncols=True)


def transcode(src: str | os.PathLike[str], out: str | os.PathLike[str], codec: str | CodecSpec,
              options: Any = None, *, frames: FrameRange | None = None,
              metrics_path: str | os.PathLike[str] | None = None, recon_path: str | os.PathLike[str] | None = None,
              progress: bool = True, ms_ssim: bool = True, size: tuple[int, int] | None = None,
              fps: Any = None, pix_fmt: str | None = None, to_pix_fmt: str | None = None,
              matrix: str | None = None, jobs: int = 1) -> TranscodeResult:
    """Code ``src`` with ``codec`` into ``out`` and measure every decoded frame.

    Args:
        codec: registry name or spec; ``options`` its options dataclass, a dict of loosely
            typed values (``make_options``) or None for the defaults.
        out: ``.mp4``/``.mkv``/``.mov`` or a raw Annex-B stream for standard codecs,
            ``.clc`` (our container) for the others.
        metrics_path: per-frame metrics, ``.csv`` or ``.json`` (with a summary).
        recon_path: decoded frames as ``.y4m``/``.yuv``/``.mkv`` (FFV1).
        progress: tqdm bar on stderr (shown only when stderr is a terminal).
        size, fps, pix_fmt, to_pix_fmt, matrix: source options (``open_source``).
        jobs: worker processes for a ``frame_parallel`` codec (``code_frames``; never more
            than the frames selected); other codecs run in order whatever it says.

    Every output is written under a temporary name and renamed when complete: on any
    failure (or Ctrl-C) none of them is left behind.
    """
    spec = get_codec(codec) if isinstance(codec, str) else codec
    if options is None or isinstance(options, dict):
        options = make_options(spec, options or {})
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, got {jobs}")
    src_p, out_p = Path(src), Path(out)
    metrics_p = Path(metrics_path) if metrics_path is not None else None
    recon_p = Path(recon_path) if recon_path is not None else None
    _check_outputs(src_p, out_p, metrics_p, recon_p)
    frames = frames or FrameRange()
    log = MetricsLog()
    with open_source(src_p, size=size, fps=fps, pix_fmt=pix_fmt, frames=frames, to_pix_fmt=to_pix_fmt,
                     matrix=matrix) as source:
        fmt = source.format
        total = len(frames.indices(source.num_frames)) if source.num_frames is not None else None
        sink = _open_packet_out(out_p, spec, fmt, options)
        recon = None
        try:
            if recon_p is not None:
                from codeclab.pipeline.io.sinks import open_sink

                recon = open_sink(recon_p, fmt)
            bits = 0
            if total is not None:
                jobs = min(jobs, max(total, 1))
            coded = code_frames(source, spec, options, ms_ssim=ms_ssim, jobs=jobs)
            with _progress(total, f"{spec.name} {src_p.name}", progress) as bar, contextlib.closing(coded):
                ordered = _DecodingOrder(sink.write)
                for cf in coded:
                    last = len(cf.packets) - 1
                    for i, (p, seq) in enumerate(zip(cf.packets, cf.packet_seq)):
                        if spec.stream_codec is None and i == last:
                            ordered.add(seq, p, cf.metrics)
                        else:
                            ordered.add(seq, p)
                    if recon is not None:
                        recon.write(cf.decoded)
                    log.add(cf.metrics)
                    bits += int(cf.metrics["bits"])
                    bar.update(1)
            if not len(log):
                raise UsageError(f"{src_p}: no frames selected (start {frames.start}, count {frames.count}, "
                                 f"step {frames.step}; the file has {source.num_frames} frames)")
            rate = fmt.fps / frames.step
            if metrics_p is not None:
                if metrics_p.suffix.lower() == ".json":
                    log.write_json(metrics_p, rate)
                else:
                    log.write_csv(metrics_p)
            committed: list[Path] = []
            try:
                sink.close()
                committed.append(out_p)
                if recon is not None:
                    recon.close()
            except BaseException:
                for p in committed + ([metrics_p] if metrics_p is not None else []):
                    p.unlink(missing_ok=True)
                raise
        except BaseException:
            sink.abort()
            if recon is not None:
                recon.abort()
            raise
    return TranscodeResult(out_p, spec.name, fmt, len(log), bits, log.summary(rate), metrics_p, recon_p)
