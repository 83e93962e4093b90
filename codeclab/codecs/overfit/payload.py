"""One coded picture of the overfitted codec: header, network parameters, latents.

Layout (all integers little-endian)::

    u8  version (1)        u8 flags (bit 0: ar order)   u8 grids   u8 channels[grids]
    u8  synth_hidden       u8 res3x3                    u8 ctx_hidden
    u16 width  u16 height  u8 bit_depth
    i8  exponent of (up, w) (up, b) (syn, w) (syn, b) (prob, w) (prob, b)
    u32 length of the parameter section   u32 CRC-32 of the parameter integers
    parameter section: u8 scale index per tensor, then the integers of every tensor
                       (stream order of config.param_shapes) range-coded, Laplace(0, scale)
    latent section:    range-coded latents, grids coarsest first; msp: 4 stages per grid;
                       ar: raster order. Laplace(mean, scale) from fixed.prob_fx.
    u32 CRC-32 of everything before it

The trailing CRC rejects damaged or truncated bytes before anything is decoded (a range
decoder reads garbage without complaint). The parameter CRC checks the *decoding*: it is
computed over the integers the encoder used and verified over those the decoder got, so a
decoder never runs a network that differs from the encoder's.
"""

from __future__ import annotations

import struct
import zlib

import constriction
import numpy as np

from codeclab.base.errors import BitstreamError
from codeclab.codecs.overfit.context import STAGES, ar_context_at, ar_contexts, parent_context, stage_context
from codeclab.codecs.overfit.fixed import MODULES, R, IntParams, coding_params, prob_fx
from codeclab.codecs.overfit.config import OverfitConfig, grid_shapes, param_shapes

__all__ = ["VERSION", "encode_payload", "decode_payload", "param_bytes", "sequential_steps", "peek_size"]

VERSION = 2  # 2: synthesis at full resolution
_KINDS = tuple((m, k) for m in MODULES for k in ("w", "b"))
_PMAX = (1 << 15) - 1
#: Laplace scales of the parameter integers: 2**(k/4), k = 0..63
_PSCALES = 2.0 ** (np.arange(64) / 4)
_LAT = constriction.stream.model.QuantizedLaplace(-R, R)
_PAR = constriction.stream.model.QuantizedLaplace(-_PMAX, _PMAX)


def sequential_steps(cfg: OverfitConfig, width: int, height: int) -> int:
    """Sequential entropy-decoding steps of one picture (msp: constant; ar: one per latent)."""
    if cfg.prob_model == "msp":
        return len(STAGES) * cfg.grids
    return sum(c * h * w for c, (h, w) in zip(cfg.channels, grid_shapes(cfg, height, width)))


def _param_crc(ip: IntParams, names: list[str]) -> int:
    crc = 0
    for n in names:
        crc = zlib.crc32(np.ascontiguousarray(ip.ints[n], "<i8").tobytes(), crc)
    return crc


def param_bytes(ip: IntParams, cfg: OverfitConfig) -> bytes:
    """The parameter section: scale indices, then the range-coded integers."""
    names = [n for n, *_ in param_shapes(cfg)]
    enc = constriction.stream.queue.RangeEncoder()
    idx = bytearray()
    for n in names:
        q = ip.ints[n].reshape(-1)
        if q.size and np.abs(q).max() > _PMAX:
            raise OverflowError(f"parameter {n} does not fit the step")
        k = int(np.clip(np.searchsorted(_PSCALES, max(float(np.abs(q).mean()), 1e-9)), 0, 63))
        idx.append(k)
        enc.encode(q.astype(np.int32), _PAR, np.zeros(q.size), np.full(q.size, _PSCALES[k]))
    return bytes(idx) + enc.get_compressed().tobytes()


def encode_payload(cfg: OverfitConfig, ip: IntParams, lat: list[np.ndarray], width: int, height: int,
                   bit_depth: int) -> bytes:
    """Header + parameters + latents of one picture."""
    names = [n for n, *_ in param_shapes(cfg)]
    head = struct.pack("<BBB", VERSION, 1 if cfg.prob_model == "ar" else 0, cfg.grids)
    head += bytes(cfg.channels) + struct.pack("<BBBHHB", cfg.synth_hidden, cfg.res3x3, cfg.ctx_hidden,
                                              width, height, bit_depth)
    head += struct.pack("<6b", *(ip.exps[k] for k in _KINDS))
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
        exps = dict(zip(_KINDS, struct.unpack_from("<6b", data, pos)))
        pos += 6
        plen, pcrc = struct.unpack_from("<II", data, pos)
        pos += 8
    except struct.error:
        raise BitstreamError("overfit payload: truncated header") from None
    if not (1 <= width and 1 <= height and bd in range(8, 17) and 1 <= sh and 1 <= ch and r3 <= 8
            and len(channels) == grids and min(channels, default=0) >= 1 and max(channels) <= 8):
        raise BitstreamError("overfit payload: bad header")
    cfg = OverfitConfig(grids, channels, sh, r3, ch, "ar" if flags & 1 else "msp")
    names = param_shapes(cfg)
    if pos + plen > len(data) or plen < len(names):
        raise BitstreamError("overfit payload: truncated parameter section")
    sec = data[pos:pos + plen]
    ints, kinds = {}, {}
    try:
        dec = constriction.stream.queue.RangeDecoder(_words(sec[len(names):]))
        for i, (n, shape, mod, kind) in enumerate(names):
            k = sec[i]
            if k >= 64:
                raise BitstreamError("overfit payload: bad parameter scale")
            size = int(np.prod(shape))
            q = dec.decode(_PAR, np.zeros(size), np.full(size, _PSCALES[k]))
            ints[n] = q.astype(np.int64).reshape(shape)
            kinds[n] = (mod, kind)
    except BitstreamError:
        raise
    except Exception as e:  # constriction raises on exhausted or garbled input
        raise BitstreamError(f"overfit payload: damaged parameter section ({e})") from None
    ip = IntParams(ints, exps, kinds)
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
