"""The decoder in exact integer arithmetic: what every machine computes bit for bit.

Parameters travel as integers ``q`` with one step per tensor on a half-octave grid
(``w = q * m * 2**-e``, ``m`` 1 or 3, :class:`IntParams`). Activations are fixed point
with :data:`FA` fractional bits in int64; a layer is ``(a @ q_w + bias) >> e_w`` (an
arithmetic shift is a floor division, exact), ReLU is ``max(0, .)``. Every sum is of integers far below 2**63,
so the result does not depend on summation order, blocking or threads. The probability
model's outputs become a mean on the 1/2**FA grid and a log-scale index into a fixed table
(integer comparisons only), so the entropy coder sees identical numbers on both sides; the
synthesis gives the decoded samples. The encoder decodes its own stream with these same
functions, so the quality it reports is the decoder's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codeclab.codecs.overfit.config import LOG_SCALE_MAX, LOG_SCALE_MIN, N_CTX, OverfitConfig

__all__ = ["FA", "N_SCALES", "SCALE_TABLE", "IntParams", "step_of", "prob_fx", "coding_params",
           "synthesize_fx", "to_samples", "R"]

FA = 12  # fractional bits of activations
R = 255  # latents are clamped to [-R, R]
N_SCALES = 128
_LMIN = round(LOG_SCALE_MIN * (1 << FA))
_DELTA = round((LOG_SCALE_MAX - LOG_SCALE_MIN) / (N_SCALES - 1) * (1 << FA))
#: Laplace scale of table index k (6 significant digits, so every platform builds the same table)
SCALE_TABLE = np.array([float(f"{math.exp((_LMIN + k * _DELTA) / (1 << FA)):.6g}") for k in range(N_SCALES)])


def step_of(h: int) -> tuple[int, int]:
    """Half-octave step code ``h`` -> (multiplier, shift): the step is ``mult * 2**-shift``,
    2**-(h/2) for even h and 3 * 2**-(h//2 + 2) (0.75 of the next coarser power of two,
    within 7 % of 2**-(h/2)) for odd h, so the decoder's weights stay integers."""
    return (3, h // 2 + 2) if h & 1 else (1, h // 2)


@dataclass
class IntParams:
    """Quantized decoder parameters: integers and a half-octave step code ``h`` per tensor
    (:func:`step_of`); the decoder computes with ``ints * mult`` at ``shift`` fractional bits."""

    ints: dict[str, np.ndarray]
    exps: dict[str, int]

    def value(self, name: str) -> np.ndarray:
        """The tensor's integer weights on the 2**-shift grid (``ints * mult``)."""
        return self.ints[name] * step_of(self.exps[name])[0]

    def exp(self, name: str) -> int:
        """Fractional bits (the shift) of :meth:`value`."""
        return step_of(self.exps[name])[1]

    def step(self, name: str) -> float:
        """The real step of the tensor's integers."""
        mult, shift = step_of(self.exps[name])
        return mult * 2.0 ** -shift


# ---------------------------------------------------------------------------------------
# integer layers


def _bias(qb: np.ndarray, eb: int, shift: int) -> np.ndarray:
    """Bias ``qb * 2**-eb`` on the scale ``2**-shift`` (floor when it loses bits)."""
    d = shift - eb
    return qb << d if d >= 0 else qb >> -d


def linear_fx(a: np.ndarray, qw: np.ndarray, ew: int, qb: np.ndarray, eb: int) -> np.ndarray:
    """(N, K) fixed point @ (M, K) weights + bias -> (N, M) fixed point."""
    acc = a @ qw.T + _bias(qb, eb, FA + ew)
    return acc >> ew


def conv3x3_fx(x: np.ndarray, qw: np.ndarray, ew: int, qb: np.ndarray, eb: int) -> np.ndarray:
    """(C, H, W) fixed point -> (M, H, W), zero padding, as torch's Conv2d(padding=1)."""
    c, h, w = x.shape
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out = np.empty((qw.shape[0], h, w), np.int64)
    for m in range(qw.shape[0]):
        acc = np.full((h, w), _bias(qb[m], eb, FA + ew), np.int64)
        for ci in range(c):
            for dy in range(3):
                for dx in range(3):
                    k = int(qw[m, ci, dy, dx])
                    if k:
                        acc += k * p[ci, dy:dy + h, dx:dx + w]
        out[m] = acc >> ew
    return out


def upsample2_fx(x: np.ndarray, taps: np.ndarray, e: int) -> np.ndarray:
    """Integer twin of :func:`.model.upsample2` on (C, H, W)."""
    a, b, c, d = (int(t) for t in taps)

    def one_dim(t: np.ndarray) -> np.ndarray:
        n = t.shape[-1]
        p = np.pad(t, [(0, 0)] * (t.ndim - 1) + [(2, 2)], mode="edge")
        even = (a * p[..., 0:n] + c * p[..., 1:n + 1] + d * p[..., 2:n + 2] + b * p[..., 3:n + 3]) >> e
        odd = (b * p[..., 1:n + 1] + d * p[..., 2:n + 2] + c * p[..., 3:n + 3] + a * p[..., 4:n + 4]) >> e
        return np.stack([even, odd], -1).reshape(*t.shape[:-1], 2 * n)

    y = one_dim(x)
    return np.swapaxes(one_dim(np.swapaxes(y, -1, -2)), -1, -2)


def synthesize_fx(lat: list[np.ndarray], ip: IntParams, cfg: OverfitConfig) -> np.ndarray:
    """Integer latents (c, h, w) per grid -> (3, H, W) fixed-point outputs at grid 0's size."""
    g = cfg.grids
    u = lat[g - 1].astype(np.int64) << FA
    taps = ip.value("up.taps")
    e_up = ip.exp("up.taps")
    for lvl in range(g - 2, -1, -1):
        h, w = lat[lvl].shape[-2:]
        u = np.concatenate([lat[lvl].astype(np.int64) << FA, upsample2_fx(u, taps[lvl], e_up)[:, :h, :w]], 0)
    ch, h, w = u.shape
    a = u.reshape(ch, -1).T
    s1 = linear_fx(a, ip.value("syn1.weight")[:, :, 0, 0], ip.exp("syn1.weight"), ip.value("syn1.bias"),
                   ip.exp("syn1.bias"))
    s1 = np.maximum(s1, 0)
    y = linear_fx(s1, ip.value("syn2.weight")[:, :, 0, 0], ip.exp("syn2.weight"), ip.value("syn2.bias"),
                  ip.exp("syn2.bias")) + (1 << (FA - 1))
    y = np.ascontiguousarray(y.T.reshape(3, h, w))
    for i in range(cfg.res3x3):
        r = conv3x3_fx(y, ip.value(f"res.{i}.weight"), ip.exp(f"res.{i}.weight"), ip.value(f"res.{i}.bias"),
                       ip.exp(f"res.{i}.bias"))
        y = y + (np.maximum(r, 0) if i < cfg.res3x3 - 1 else r)
    return y


def to_samples(y: np.ndarray, bit_depth: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed-point outputs -> Y, U, V integer planes of the picture's size and depth (the
    chroma planes are the 2x2 means of outputs 1 and 2, floored on the fixed-point grid)."""
    top = (1 << bit_depth) - 1
    _, h, w = y.shape
    c = y[1:].reshape(2, h // 2, 2, w // 2, 2).sum((2, 4)) >> 2
    dt = np.uint8 if bit_depth == 8 else np.uint16

    def samples(t: np.ndarray) -> np.ndarray:
        return np.clip((t * top + (1 << (FA - 1))) >> FA, 0, top).astype(dt)

    ch, cw = (height + 1) // 2, (width + 1) // 2
    return samples(y[0, :height, :width]), samples(c[0, :ch, :cw]), samples(c[1, :ch, :cw])


# ---------------------------------------------------------------------------------------
# probability model


def prob_fx(ctx: np.ndarray, grid: int, ip: IntParams) -> tuple[np.ndarray, np.ndarray]:
    """Integer contexts (N, 21) of one grid -> (mean, log-scale) fixed point (N,) each."""
    a = ctx.astype(np.int64) << FA
    if a.shape[1] != N_CTX:
        raise ValueError("context width")
    h = np.maximum(linear_fx(a, ip.value("prob.l1.weight"), ip.exp("prob.l1.weight"), ip.value("prob.l1.bias"),
                             ip.exp("prob.l1.bias")), 0)
    h = np.maximum(linear_fx(h, ip.value("prob.l2.weight"), ip.exp("prob.l2.weight"), ip.value("prob.l2.bias"),
                             ip.exp("prob.l2.bias")), 0)
    out = linear_fx(h, ip.value("prob.l3.weight"), ip.exp("prob.l3.weight"), ip.value("prob.l3.bias"),
                    ip.exp("prob.l3.bias"))
    gb = _bias(ip.value("prob.grid_bias")[grid], ip.exp("prob.grid_bias"), FA)
    return out[:, 0] + gb[0], out[:, 1] + gb[1]


def coding_params(mu_fx: np.ndarray, logb_fx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means (exact floats on the 1/2**FA grid, within [-R, R]) and table scales."""
    mean = np.clip(mu_fx, -R << FA, R << FA) / float(1 << FA)
    k = np.clip((logb_fx - _LMIN + (_DELTA >> 1)) // _DELTA, 0, N_SCALES - 1)
    return mean, SCALE_TABLE[k]
