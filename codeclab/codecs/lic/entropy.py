"""Deterministic entropy coding of the latents (constriction ANS, Gaussian conditionals).

Why it is deterministic: the encoder and the decoder must feed the coder the same
probabilities on any machine and thread count. Everything that decides them runs in
**exact integer arithmetic**:

- the hyper-synthesis ``h_s`` and every MSP step net are evaluated in fixed point
  (activations scaled by ``2**FA``, weights by ``2**FW``, all rounded to integers once),
  as float64 convolutions whose every product and partial sum is an integer below
  ``2**53`` — exactly representable, so the result does not depend on summation order,
  blocking or threads. Rescaling is a floor division by a power of two (exact), LeakyReLU's
  slope is 1/8 (exact). A guard raises if any accumulator could reach ``2**52``;
- ``y_hat`` and ``z_hat`` are integers (never mean-shifted);
- a mean becomes an integer centre plus an offset on a 1/8 grid, a log-scale becomes an
  index into a fixed 64-entry table (integer comparisons only);
- the coder receives those table values, identical floats on both sides.

Residual risk: constriction itself turning identical float64 (mean, std) into different
integer CDFs on another platform (it is one Rust implementation, IEEE arithmetic, so we
do not expect it). The payload carries a CRC32 of every (mean, scale-index) tensor; the
decoder recomputes it and raises :class:`BitstreamError` on a mismatch instead of
returning a silently wrong picture.

Symbols are ``y_hat - centre`` in ``[-R, R]``; ``±R`` is an escape whose true value follows
in a separate int32 list (rare: only for latents far in a tail).
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import constriction
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from codeclab.base.errors import BitstreamError, CodecError
from codeclab.codecs.lic.model import LOG_SCALE_MAX, LOG_SCALE_MIN, LicModel
from codeclab.codecs.lic.msp import LEAK, step_masks

__all__ = ["FA", "FW", "SCALE_TABLE", "FixedNet", "EntropyCoder", "R"]

FA = 10  # fractional bits of activations
FW = 12  # fractional bits of weights
R = 255  # symbol range [-R, R]; ±R escapes
N_SCALES = 64
_LMIN_F = round(LOG_SCALE_MIN * (1 << FA))
_DELTA_F = round((LOG_SCALE_MAX - LOG_SCALE_MIN) / (N_SCALES - 1) * (1 << FA))
#: the scale of table index k (rounded to 6 significant digits so every platform agrees).
SCALE_TABLE = np.array(
    [float(f"{math.exp((_LMIN_F + k * _DELTA_F) / (1 << FA)):.6g}") for k in range(N_SCALES)], np.float64
)
_LIMIT = float(2**52)
_FAM = constriction.stream.model.QuantizedGaussian(-R, R)


class FixedNet:
    """A Sequential of Conv2d / ConvTranspose2d / LeakyReLU(1/8) in exact fixed point."""

    def __init__(self, seq: nn.Sequential, in_keep: torch.Tensor | None = None,
                 out_keep: torch.Tensor | None = None) -> None:
        """``in_keep`` / ``out_keep``: input channels of the first conv and output channels
        of the last conv to keep (inputs known to be zero and unused outputs cost nothing)."""
        self.layers: list[tuple] = []
        convs = [i for i, mod in enumerate(seq) if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d))]
        for i, mod in enumerate(seq):
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
                w = torch.round(mod.weight.detach().double() * (1 << FW))
                b = torch.round(mod.bias.detach().double() * (1 << FA))
                if i == convs[0] and in_keep is not None and isinstance(mod, nn.Conv2d):
                    w = w[:, in_keep]
                if i == convs[-1] and out_keep is not None and isinstance(mod, nn.Conv2d):
                    w, b = w[out_keep], b[out_keep]
                bound = w.abs().flatten(1).sum(1).max() if isinstance(mod, nn.Conv2d) else w.abs().transpose(0, 1).flatten(1).sum(1).max()
                self.layers.append(("convT" if isinstance(mod, nn.ConvTranspose2d) else "conv", w, b, mod.stride,
                                    mod.padding, getattr(mod, "output_padding", (0, 0)), float(bound)))
            elif isinstance(mod, nn.LeakyReLU):
                if mod.negative_slope != LEAK:
                    raise CodecError(f"fixed-point net needs LeakyReLU({LEAK}), got {mod.negative_slope}")
                self.layers.append(("lrelu",))
            else:
                raise CodecError(f"fixed-point net cannot evaluate {type(mod).__name__}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: float64 integer-valued, real value * 2**FA. Returns the same representation."""
        for layer in self.layers:
            if layer[0] == "lrelu":
                x = torch.where(x < 0, torch.floor(x / 8), x)
                continue
            kind, w, b, stride, pad, opad, bound = layer
            # worst case |acc| <= max|x| * max_o sum|w_o|: refuse if exactness could be lost
            if float(x.abs().max()) * bound >= _LIMIT:
                raise CodecError("fixed-point entropy model overflow: latent values too large")
            if kind == "conv":
                acc = F.conv2d(x, w, None, stride, pad)
            else:
                acc = F.conv_transpose2d(x, w, None, stride, pad, opad)
            x = torch.floor(acc / (1 << FW)) + b[None, :, None, None]
        return x


def _to_fixed(v: torch.Tensor) -> torch.Tensor:
    return v.double() * (1 << FA)


def _quantize_params(mean_f: torch.Tensor, logs_f: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point (mean, log-scale) -> (mean on a 1/8 grid as int, scale index). Integer ops."""
    m8 = torch.floor((mean_f + (1 << (FA - 4))) / (1 << (FA - 3))).to(torch.int64)
    idx = torch.div(logs_f.to(torch.int64) - _LMIN_F + _DELTA_F // 2, _DELTA_F, rounding_mode="floor")
    return m8.numpy(), idx.clamp(0, N_SCALES - 1).numpy()


def _split_mean(m8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer centre and the remaining offset in [-1/2, 1/2) for the coder."""
    c = np.floor_divide(m8 + 4, 8)
    return c, (m8 - 8 * c) / 8.0


@dataclass
class LatentShapes:
    m: int
    h: int  # latent rows (padded height / 16)
    w: int
    nz: int

    @property
    def z_hw(self) -> tuple[int, int]:
        return self.h // 4, self.w // 4


class EntropyCoder:
    """Codes (y_hat, z_hat) of one picture with the model's MSP steps, bit-exactly."""

    def __init__(self, model: LicModel) -> None:
        self.h_s = FixedNet(model.h_s)
        self.profile = prof = model.msp.profile
        c, ch = model.cfg.m, model.cfg.ch
        gsize = -(-c // prof.groups)
        group = [torch.arange(g * gsize, min(c, (g + 1) * gsize)) for g in range(prof.groups)]
        self.steps, self.ctx_ch, self.out_ch = [], [], []
        for k, net in enumerate(model.msp.nets):
            lvl, g = divmod(k, prof.groups)
            # context channels that can be non-zero at step k: groups already coded somewhere
            known = group if lvl > 0 else group[:g]
            ctx = torch.cat(known) if known else torch.zeros(0, dtype=torch.int64)
            self.ctx_ch.append(ctx)
            self.out_ch.append(group[g])
            self.steps.append(FixedNet(net.body, torch.cat([ctx, c + torch.arange(ch)]),
                                       torch.cat([group[g], c + group[g]])))
        zm = _to_fixed(torch.round(model.z_mean.detach().double() * (1 << FA)) / (1 << FA))
        zl = torch.round(model.z_log_scale.detach().double() * (1 << FA))
        self.z_m8, self.z_idx = _quantize_params(zm, zl)

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    def _z_params(self, shp: LatentShapes) -> tuple[np.ndarray, np.ndarray]:
        zh, zw = shp.z_hw
        m8 = np.broadcast_to(self.z_m8[:, None, None], (shp.nz, zh, zw)).reshape(-1)
        idx = np.broadcast_to(self.z_idx[:, None, None], (shp.nz, zh, zw)).reshape(-1)
        return m8, idx

    def _step_params(self, k: int, y_known: torch.Tensor, hfeat: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(mean/8, scale index) of the channels of step k's group, (cg, h, w) each."""
        out = self.steps[k](torch.cat([_to_fixed(y_known[:, self.ctx_ch[k]]), hfeat], 1))
        cg = len(self.out_ch[k])
        return _quantize_params(out[0, :cg], out[0, cg:])

    def encode(self, y_hat: torch.Tensor, z_hat: torch.Tensor) -> bytes:
        """y_hat (1,M,h,w), z_hat (1,nz,h/4,w/4): integer-valued tensors -> payload bytes."""
        _, m, h, w = y_hat.shape
        shp = LatentShapes(m, h, w, z_hat.shape[1])
        syms, means, idxs, crc = [], [], [], 0
        zm8, zidx = self._z_params(shp)
        self._add(z_hat.reshape(-1).to(torch.int64).numpy(), zm8, zidx, syms, means, idxs)
        hfeat = self.h_s(_to_fixed(z_hat))
        masks = step_masks(m, h, w, self.profile)
        known = torch.zeros_like(masks[0])
        yd = y_hat.double()
        for k in range(self.num_steps):
            m8, idx = self._step_params(k, yd * known, hfeat)
            sel = masks[k][self.out_ch[k]].numpy()
            crc = zlib.crc32(m8.tobytes(), zlib.crc32(idx.tobytes(), crc))
            self._add(y_hat[0, self.out_ch[k]].to(torch.int64).numpy()[sel], m8[sel], idx[sel], syms, means, idxs)
            known = known | masks[k]
        sym = np.concatenate(syms)
        mean = np.concatenate(means)
        std = SCALE_TABLE[np.concatenate(idxs)]
        esc_mask = np.abs(sym) >= R
        escapes = sym[esc_mask].astype(np.int64)
        sym = np.where(esc_mask, np.sign(sym) * R, sym).astype(np.int32)
        enc = constriction.stream.stack.AnsCoder()
        enc.encode_reverse(sym, _FAM, mean, std)
        words = enc.get_compressed()
        if len(escapes) and np.abs(escapes).max() >= 2**31:
            raise CodecError("latent value out of int32 range")
        return struct.pack("<III", crc, len(words), len(escapes)) + words.astype("<u4").tobytes() + \
            escapes.astype("<i4").tobytes()

    @staticmethod
    def _add(vals, m8, idx, syms, means, idxs) -> None:
        c, off = _split_mean(m8)
        syms.append(vals - c)
        means.append(off)
        idxs.append(idx)

    def decode(self, data: bytes, m: int, h: int, w: int, nz: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inverse of :meth:`encode`; returns integer-valued float32 (y_hat, z_hat)."""
        shp = LatentShapes(m, h, w, nz)
        try:
            crc, nw, ne = struct.unpack_from("<III", data, 0)
            words = np.frombuffer(data, "<u4", nw, 12).astype(np.uint32)
            escapes = np.frombuffer(data, "<i4", ne, 12 + 4 * nw).astype(np.int64)
        except (struct.error, ValueError):
            raise BitstreamError("lic payload: latent data truncated") from None
        if 12 + 4 * nw + 4 * ne != len(data):
            raise BitstreamError("lic payload: latent data has the wrong length")
        dec = constriction.stream.stack.AnsCoder(words)
        esc_pos = [0]

        def take(m8: np.ndarray, idx: np.ndarray) -> np.ndarray:
            c, off = _split_mean(m8)
            try:
                s = dec.decode(_FAM, off, SCALE_TABLE[idx]).astype(np.int64)
            except Exception as e:  # constriction raises on exhausted/garbled data
                raise BitstreamError(f"lic payload: entropy decoding failed ({e})") from None
            esc = np.flatnonzero(np.abs(s) >= R)
            if len(esc):
                if esc_pos[0] + len(esc) > len(escapes):
                    raise BitstreamError("lic payload: missing escape values")
                s[esc] = escapes[esc_pos[0] : esc_pos[0] + len(esc)]
                esc_pos[0] += len(esc)
            return s + c

        zh, zw = shp.z_hw
        zm8, zidx = self._z_params(shp)
        z_hat = torch.from_numpy(take(zm8, zidx).reshape(1, nz, zh, zw)).double()
        hfeat = self.h_s(_to_fixed(z_hat))
        masks = step_masks(m, h, w, self.profile)
        known = torch.zeros_like(masks[0])
        y = torch.zeros((1, m, h, w), dtype=torch.float64)
        crc2 = 0
        self.last_decode_steps = 0  # sequential network passes of the last decode (benchmarks)
        for k in range(self.num_steps):
            self.last_decode_steps += 1
            m8, idx = self._step_params(k, y * known, hfeat)
            crc2 = zlib.crc32(m8.tobytes(), zlib.crc32(idx.tobytes(), crc2))
            sel = masks[k][self.out_ch[k]].numpy()
            vals = take(m8[sel], idx[sel])
            y[0][masks[k]] = torch.from_numpy(vals).double()
            known = known | masks[k]
        if crc2 != crc:
            raise BitstreamError("lic payload: probability-model CRC mismatch (decoder computed different "
                                 "entropy parameters than the encoder, or the data is damaged)")
        return y.float(), z_hat.float()
