"""One coded picture of the overfitted codec: header, network parameters, latents.

Layout (all integers little-endian)::

    u8  version (3)        u8 flags (bit 0: ar order)   u8 grids   u8 channels[grids]
    u8  synth_hidden       u8 res3x3                    u8 ctx_hidden
    u16 width  u16 height  u8 bit_depth
    u32 length of the parameter section   u32 CRC-32 of the step codes and parameter integers
    parameter section: per tensor (stream order of config.param_shapes) u8 step code h
                       (fixed.step_of) and u8 code (bits 0-4: scale index k, bits 5-7: zero
                       class z); then the integers of every tensor range-coded: z = 0:
                       Laplace(0, 2**(k/2)); z > 0: a zero flag per integer (P(0) =
                       _P0[z]), then the non-zero ones as v = q - (q > 0) with
                       Laplace(-1/2, 2**(k/2)) (symmetric: +1 and -1 cost the same)
    latent section:    range-coded latents, grids coarsest first; msp: 4 stages per grid;
                       ar: raster order. Laplace(mean, scale) from fixed.prob_fx.
    u32 CRC-32 of everything before it

The trailing CRC rejects damaged or truncated bytes before anything is decoded (a range
decoder reads garbage without complaint). The parameter CRC checks the *decoding*: it is
computed over the integers the encoder used and verified over those the decoder got, so a
decoder never runs a network that differs from the encoder's.

Why zero flags: the encoder zeroes the parameters that do not pay for their bits (RDOQ
of the parameters, :mod:`.encoder`); under one Laplace per tensor a zero costs about as
much as any small integer, with a flag it costs -log2 P(0). Every probability is exact on
both sides: the flag probabilities are dyadic and the Laplace scales come from a table.
"""

from __future__ import annotations

import math
import struct
import zlib

import constriction
import numpy as np

from codeclab.base.errors import BitstreamError
from codeclab.codecs.overfit.context import STAGES, ar_context_at, ar_contexts, parent_context, stage_context
from codeclab.codecs.overfit.fixed import R, IntParams, coding_params, prob_fx
from codeclab.codecs.overfit.config import OverfitConfig, grid_shapes, param_shapes

__all__ = ["VERSION", "encode_payload", "decode_payload", "param_bytes", "decode_params", "tensor_code",
           "sequential_steps", "peek_size"]

VERSION = 3  # 2: synthesis at full resolution; 3: half-octave steps, zero flags on the parameters
_PMAX = (1 << 15) - 1
#: Laplace scales of the parameter integers: 2**(k/2), k = 0..31 (6 significant digits, so
#: every platform builds the same table)
_PSCALES = np.array([float(f"{2.0 ** (k / 2):.6g}") for k in range(32)])
#: probability of a zero integer per zero class z (z = 0: no flags); dyadic, exact in any float
_P0 = np.array([0, 1, 2, 3, 4, 6, 8, 11]) / 16
_FLAG = [constriction.stream.model.Bernoulli(1.0 - p, perfect=False) for p in _P0]  # P(1) = P(non-zero)
_LOG2E = 1.0 / math.log(2.0)
_HMAX = 40  # largest step code a decoder accepts (the encoder's search stops at 33)
_LAT = constriction.stream.model.QuantizedLaplace(-R, R)
_PAR = constriction.stream.model.QuantizedLaplace(-_PMAX, _PMAX)


def sequential_steps(cfg: OverfitConfig, width: int, height: int) -> int:
    """Sequential entropy-decoding steps of one picture (msp: constant; ar: one per latent)."""
    if cfg.prob_model == "msp":
        return len(STAGES) * cfg.grids
    return sum(c * h * w for c, (h, w) in zip(cfg.channels, grid_shapes(cfg, height, width)))


def _param_crc(ip: IntParams, names: list[str]) -> int:
    crc = zlib.crc32(bytes(ip.exps[n] for n in names))
    for n in names:
        crc = zlib.crc32(np.ascontiguousarray(ip.ints[n], "<i8").tobytes(), crc)
    return crc


def _laplace_bits(v: np.ndarray, mean: float) -> np.ndarray:
    """(scales, n) estimated bits of integers v under Laplace(mean, s) on unit bins, for every
    scale s of _PSCALES (mean 0 or -1/2; in the log domain, so no tail underflows; capped at
    the range coder's 24-bit floor)."""
    b = _PSCALES[:, None]
    t = np.abs(v.astype(np.float64) - mean)[None]
    tail = 1.0 + (t - 0.5) / b * _LOG2E - np.log2(-np.expm1(-1.0 / b))
    centre = -np.log2(-np.expm1(-0.5 / b))
    return np.minimum(np.where(t < 0.5, centre, tail), 24.0)


def tensor_code(q: np.ndarray) -> tuple[int, float]:
    """The code byte of one tensor's integers (scale index and zero class of fewest estimated
    bits) and those bits, the byte included: what the encoder's RD search counts (infinite
    when an integer is out of range)."""
    q = q.reshape(-1)
    if q.size and np.abs(q).max() > _PMAX:
        return 0, math.inf
    nz = q[q != 0]
    n0 = q.size - nz.size
    plain = _laplace_bits(q, 0.0).sum(1)
    flagged = _laplace_bits(nz - (nz > 0), -0.5).sum(1)[None] + (
        -n0 * np.log2(_P0[1:]) - nz.size * np.log2(1.0 - _P0[1:]))[:, None]
    table = np.concatenate([plain[None], flagged])  # (zero class, scale)
    z, k = np.unravel_index(int(np.argmin(table)), table.shape)
    return int(k) | int(z) << 5, float(table[z, k]) + 8.0


def param_bytes(ip: IntParams, cfg: OverfitConfig) -> bytes:
    """The parameter section: step code and code byte per tensor, then the range-coded integers."""
    names = [n for n, *_ in param_shapes(cfg)]
    enc = constriction.stream.queue.RangeEncoder()
    codes = bytearray()
    for n in names:
        q = ip.ints[n].reshape(-1)
        if q.size and np.abs(q).max() > _PMAX:
            raise OverflowError(f"parameter {n} does not fit the step")
        if not 0 <= ip.exps[n] <= _HMAX:
            raise OverflowError(f"parameter {n}: step code {ip.exps[n]} outside 0..{_HMAX}")
        code, _ = tensor_code(q)
        codes += bytes((ip.exps[n], code))
        s, z = _PSCALES[code & 31], code >> 5
        if z:
            enc.encode((q != 0).astype(np.int32), _FLAG[z])
            q = q[q != 0]
            q = q - (q > 0)
        if q.size:
            enc.encode(q.astype(np.int32), _PAR, np.full(q.size, -0.5 if z else 0.0), np.full(q.size, s))
    return bytes(codes) + enc.get_compressed().tobytes()


def encode_payload(cfg: OverfitConfig, ip: IntParams, lat: list[np.ndarray], width: int, height: int,
                   bit_depth: int) -> bytes:
    """Header + parameters + latents of one picture."""
    names = [n for n, *_ in param_shapes(cfg)]
    head = struct.pack("<BBB", VERSION, 1 if cfg.prob_model == "ar" else 0, cfg.grids)
    head += bytes(cfg.channels) + struct.pack("<BBBHHB", cfg.synth_hidden, cfg.res3x3, cfg.ctx_hidden,
                                              width, height, bit_depth)
    params = param_bytes(ip, cfg)
    head += struct.pack("<II", len(params), _param_crc(ip, names))
    enc = constriction.stream.queue.RangeEncoder()
    for lvl in range(cfg.grids - 1, -1, -1):
        grid = np.clip(lat[lvl], -R, R).astype(np.int64)
        c, h, w = grid.shape
        par = parent_context(lat[lvl + 1] if lvl + 1 < cfg.grids else None, c, h, w)
        if cfg.prob_model == "msp":
            for s, (py, px) in enumerate(STAGES):
                mean, scale = coding_params(*prob_fx(stage_context(grid, par, s), lvl, ip))
                enc.encode(grid[:, py::2, px::2].reshape(-1).astype(np.int32), _LAT, mean, scale)
        else:
            ctx = ar_contexts(grid, par)
            mean, scale = coding_params(*prob_fx(ctx, lvl, ip))
            enc.encode(grid.reshape(-1).astype(np.int32), _LAT, mean, scale)
    body = head + params + enc.get_compressed().tobytes()
    return body + struct.pack("<I", zlib.crc32(body))


def decode_params(sec: bytes, cfg: OverfitConfig) -> IntParams:
    """The parameter section (:func:`param_bytes`) -> the quantized decoder."""
    names = param_shapes(cfg)
    if len(sec) < 2 * len(names):
        raise BitstreamError("overfit payload: truncated parameter section")
    exps = {n: sec[2 * i] for i, (n, *_) in enumerate(names)}
    if max(exps.values()) > _HMAX:
        raise BitstreamError("overfit payload: bad parameter step")
    ints = {}
    try:
        dec = constriction.stream.queue.RangeDecoder(_words(sec[2 * len(names):]))
        for i, (n, shape, *_) in enumerate(names):
            code = sec[2 * i + 1]
            s, z = _PSCALES[code & 31], code >> 5
            size = int(np.prod(shape))
            q = np.zeros(size, np.int64)
            nz = dec.decode(_FLAG[z], size).astype(bool) if z else np.ones(size, bool)
            cnt = int(nz.sum())
            if cnt:
                v = dec.decode(_PAR, np.full(cnt, -0.5 if z else 0.0), np.full(cnt, s)).astype(np.int64)
                q[nz] = v + (v >= 0) if z else v
            ints[n] = q.reshape(shape)
    except Exception as e:  # constriction raises on exhausted or garbled input
        raise BitstreamError(f"overfit payload: damaged parameter section ({e})") from None
    return IntParams(ints, exps)


def _words(data: bytes) -> np.ndarray:
    pad = (-len(data)) % 4
    return np.frombuffer(data + b"\0" * pad, "<u4").copy()


def peek_size(data: bytes) -> tuple[int, int, int]:
    """(width, height, bit depth) from the header, before anything is allocated."""
    try:
        grids = struct.unpack_from("<B", data, 2)[0]
        _, _, _, width, height, bd = struct.unpack_from("<BBBHHB", data, 3 + grids)
    except struct.error:
        raise BitstreamError("overfit payload: truncated header") from None
    return width, height, bd


def decode_payload(data: bytes) -> tuple[OverfitConfig, IntParams, list[np.ndarray], int, int, int]:
    """Parse and entropy-decode one picture: (config, parameters, latents, width, height, depth)."""
    if len(data) < 8 or struct.unpack("<I", data[-4:])[0] != zlib.crc32(data[:-4]):
        raise BitstreamError("overfit payload: damaged or truncated (CRC mismatch)")
    data = data[:-4]
    try:
        version, flags, grids = struct.unpack_from("<BBB", data, 0)
        if version != VERSION:
            raise BitstreamError(f"overfit payload version {version} (this decoder reads {VERSION})")
        if not 2 <= grids <= 8 or flags > 1:
            raise BitstreamError("overfit payload: bad header")
        pos = 3
        channels = tuple(data[pos:pos + grids])
        pos += grids
        sh, r3, ch, width, height, bd = struct.unpack_from("<BBBHHB", data, pos)
        pos += 8
        plen, pcrc = struct.unpack_from("<II", data, pos)
        pos += 8
    except struct.error:
        raise BitstreamError("overfit payload: truncated header") from None
    if not (1 <= width and 1 <= height and bd in range(8, 17) and 1 <= sh and 1 <= ch and r3 <= 8
            and len(channels) == grids and min(channels, default=0) >= 1 and max(channels) <= 8):
        raise BitstreamError("overfit payload: bad header")
    cfg = OverfitConfig(grids, channels, sh, r3, ch, "ar" if flags & 1 else "msp")
    names = param_shapes(cfg)
    if pos + plen > len(data):
        raise BitstreamError("overfit payload: truncated parameter section")
    ip = decode_params(data[pos:pos + plen], cfg)
    if _param_crc(ip, [n for n, *_ in names]) != pcrc:
        raise BitstreamError("overfit payload: network parameters fail their CRC (damaged stream)")
    shapes = grid_shapes(cfg, height, width)
    lat: list[np.ndarray | None] = [None] * grids
    try:
        dec = constriction.stream.queue.RangeDecoder(_words(data[pos + plen:]))
        for lvl in range(grids - 1, -1, -1):
            c, (h, w) = channels[lvl], shapes[lvl]
            grid = np.zeros((c, h, w), np.int64)
            par = parent_context(lat[lvl + 1] if lvl + 1 < grids else None, c, h, w)
            if cfg.prob_model == "msp":
                for s, (py, px) in enumerate(STAGES):
                    mean, scale = coding_params(*prob_fx(stage_context(grid, par, s), lvl, ip))
                    grid[:, py::2, px::2] = dec.decode(_LAT, mean, scale).reshape(c, (h - py + 1) // 2, (w - px + 1) // 2)
            else:
                for cc in range(c):
                    for y in range(h):
                        for x in range(w):
                            mean, scale = coding_params(*prob_fx(ar_context_at(grid, par, cc, y, x)[None], lvl, ip))
                            grid[cc, y, x] = dec.decode(_LAT, mean, scale)[0]
            lat[lvl] = grid
    except Exception as e:
        raise BitstreamError(f"overfit payload: damaged latent section ({e})") from None
    return cfg, ip, lat, width, height, bd  # type: ignore[return-value]
