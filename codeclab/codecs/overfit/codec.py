"""Codec ``overfit``: the overfitted learned intra codec over :class:`Frame` objects (4:2:0).

Each picture is one packet (:mod:`.payload`), stored in our ``.clc`` container. Encoding
fits the picture's own latents and decoder (:mod:`.encoder`): seconds to minutes per
picture by preset. Decoding runs the integer decoder (:mod:`.fixed`): deterministic on any
machine and thread count.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace

from codeclab.base.errors import BitstreamError, FormatError, UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.base.packet import Packet
from codeclab.codecs.base import CodecSpec
from codeclab.codecs.overfit.config import PROFILES, macs_per_pixel

__all__ = ["SPEC", "OverfitOptions", "OverfitEncoder", "OverfitDecoder", "decode_picture", "MAX_SIDE"]

MAX_SIDE = 16384


@dataclass(frozen=True)
class OverfitOptions:
    quality: int = 4  # rate point 1 (lowest rate) .. 8 (lambda table in encoder.LAMBDAS)
    preset: str = "medium"  # iteration budget: fast, medium, slow
    profile: str = "mid"  # decoder size: low (~300 MAC/px), mid (~600), high (~1200)
    prob_model: str = "msp"  # msp (parallel, 4 steps per grid) or ar (raster, one step per latent)
    iterations: int | None = None  # main-phase iterations instead of the preset's
    seed: int = 0
    device: str = "cpu"  # "cuda" when present: training only, decoding is integer on the CPU
    threads: int = 1  # torch threads of one encode (run several encodes in parallel instead)
    progress: bool = True  # a bar with rate, PSNR and RD cost on stderr (when it is a terminal)


def _check_format(fmt: VideoFormat) -> None:
    if fmt.chroma != "420":
        raise FormatError(f"overfit codes YUV 4:2:0 only, got {fmt.chroma} ({fmt.pix_fmt}); convert first")
    if fmt.bit_depth not in (8, 10):
        raise FormatError(f"overfit codes 8- and 10-bit pictures, got {fmt.bit_depth}-bit")
    if max(fmt.width, fmt.height) > MAX_SIDE:
        raise FormatError(f"overfit: picture {fmt.width}x{fmt.height} larger than {MAX_SIDE} on a side")


class OverfitEncoder:
    def __init__(self, fmt: VideoFormat, options: OverfitOptions) -> None:
        from codeclab.codecs.overfit.encoder import LAMBDAS, PRESETS

        _check_format(fmt)
        if not 1 <= options.quality <= len(LAMBDAS):
            raise UsageError(f"overfit: quality {options.quality} outside 1..{len(LAMBDAS)}")
        if options.preset not in PRESETS:
            raise UsageError(f"overfit: unknown preset {options.preset!r} (have {', '.join(PRESETS)})")
        if options.profile not in PROFILES:
            raise UsageError(f"overfit: unknown profile {options.profile!r} (have {', '.join(PROFILES)})")
        if options.prob_model not in ("msp", "ar"):
            raise UsageError(f"overfit: prob_model {options.prob_model!r} is not msp or ar")
        if options.iterations is not None and options.iterations < 0:
            raise UsageError("overfit: iterations must be >= 0")
        if options.device not in ("cpu", "cuda"):
            raise UsageError(f"overfit: device {options.device!r} is not cpu or cuda")
        if options.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise UsageError("overfit: device cuda asked for, but torch sees no CUDA device")
        self.fmt, self.opt = fmt, options
        self.cfg = replace(PROFILES[options.profile], prob_model=options.prob_model)
        p = PRESETS[options.preset]
        self.preset = p if options.iterations is None else replace(p, main=options.iterations)
        self.lam = LAMBDAS[options.quality - 1]

    def encode(self, frame: Frame) -> list[Packet]:
        import torch
        from tqdm import tqdm

        from codeclab.codecs.overfit.encoder import encode_planes

        t = time.perf_counter()
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, self.opt.threads))
        p = self.preset
        total = p.starts * p.warmup + p.main + p.final
        show = self.opt.progress and sys.stderr.isatty()
        try:
            with tqdm(total=total, unit="it", file=sys.stderr, leave=False, disable=not show,
                      desc=f"overfit frame {frame.index}") as bar:
                def tick(n: int, info: dict) -> None:
                    bar.update(n)
                    if bar.n % 20 == 0:
                        bar.set_postfix(bpp=f"{info['bpp']:.3f}", psnr=f"{info['psnr']:.2f}",
                                        cost=f"{info['loss']:.3e}", refresh=False)

                res = encode_planes(tuple(frame.planes[:3]), frame.format.bit_depth, self.cfg, self.lam, p,
                                    seed=self.opt.seed, device=self.opt.device, bar=tick)
        finally:
            torch.set_num_threads(threads)
        props = {"bits": 8 * len(res.data), "quality": self.opt.quality, "encode_s": time.perf_counter() - t,
                 **res.stats}
        return [Packet(res.data, frame.index, frame.pts, True, props)]

    def flush(self) -> list[Packet]:
        return []


def decode_picture(data: bytes, fmt: VideoFormat | None = None) -> Frame:
    """One payload -> the decoded frame (its format from the payload, checked against ``fmt``)."""
    from codeclab.codecs.overfit.fixed import synthesize_fx, to_samples
    from codeclab.codecs.overfit.payload import decode_payload, peek_size

    w, h, bd = peek_size(data)
    if fmt is not None and (w, h, bd) != (fmt.width, fmt.height, fmt.bit_depth):
        raise BitstreamError(f"overfit packet is {w}x{h} {bd}-bit, the stream is {fmt.width}x{fmt.height} "
                             f"{fmt.bit_depth}-bit")
    if max(w, h) > MAX_SIDE:
        raise BitstreamError(f"overfit packet claims {w}x{h}")
    cfg, ip, lat, w, h, bd = decode_payload(data)
    planes = to_samples(synthesize_fx(lat, ip, cfg), bd, h, w)
    base = fmt if fmt is not None else VideoFormat(w, h)
    return Frame(planes, base.with_(width=w, height=h, chroma="420", bit_depth=bd))


class OverfitDecoder:
    def __init__(self, fmt: VideoFormat, options: OverfitOptions) -> None:
        self.fmt = fmt

    def decode(self, packet: Packet) -> list[Frame]:
        f = decode_picture(packet.data, self.fmt)
        f.index, f.pts = packet.index, packet.pts
        return [f]

    def flush(self) -> list[Frame]:
        return []


#: codec ``overfit`` of the registry
SPEC = CodecSpec(
    name="overfit",
    description="overfitted learned intra codec: per-picture latents + decoder, multi-scale progressive "
                "probability model; presets fast/medium/slow; decoder profiles "
                + ", ".join(f"{k} {macs_per_pixel(c):.0f}" for k, c in PROFILES.items()) + " MAC/px",
    options=OverfitOptions,
    make_encoder=OverfitEncoder,
    make_decoder=OverfitDecoder,
    stream_codec=None,
    raw_ext=".clc",
    frame_parallel=True,  # every picture is fitted and coded on its own (seeded, one thread)
)
