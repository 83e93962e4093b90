"""Sizes of the overfitted codec's decoder and its profiles (no torch here: the registry and
``codeclab codecs`` read them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["N_CTX", "OverfitConfig", "PROFILES", "macs_per_pixel", "param_shapes", "grid_shapes", "LOG_SCALE_MIN",
           "LOG_SCALE_MAX"]

#: inputs of the probability model's MLP (see :mod:`.context`): 12 of the latent's own grid
#: + 9 of its parent's
N_CTX = 21
#: range of the Laplace log-scale the probability model can output
LOG_SCALE_MIN = math.log(0.05)
LOG_SCALE_MAX = math.log(60.0)


@dataclass(frozen=True)
class OverfitConfig:
    """Sizes of one decoder (a profile), written in every stream header."""

    grids: int = 7
    channels: tuple[int, ...] = (1, 1, 1, 1, 1, 1, 1)
    synth_hidden: int = 16
    res3x3: int = 2
    ctx_hidden: int = 12
    prob_model: str = "msp"  # "msp" or "ar"

    def __post_init__(self) -> None:
        if not 2 <= self.grids <= 8 or len(self.channels) != self.grids or min(self.channels) < 1:
            raise ValueError(f"overfit: {self.grids} grids with channels {self.channels}")
        if self.prob_model not in ("msp", "ar"):
            raise ValueError(f"overfit: probability model {self.prob_model!r} is not msp or ar")

    @property
    def synth_in(self) -> int:
        return sum(self.channels)


#: decoder profiles by their multiplications per luma pixel (printed by ``codeclab codecs``)
PROFILES: dict[str, OverfitConfig] = {
    "low": OverfitConfig(synth_hidden=6, res3x3=1, ctx_hidden=4),
    "mid": OverfitConfig(synth_hidden=16, res3x3=1, ctx_hidden=8),
    "high": OverfitConfig(synth_hidden=40, res3x3=2, ctx_hidden=12),
}


def macs_per_pixel(cfg: OverfitConfig) -> float:
    """Multiplications per luma pixel of the decoder (upsampling, synthesis, probability model)."""
    # latents per luma pixel: grid l holds channels[l] / 4^l per pixel
    lat = sum(c / 4 ** g for g, c in enumerate(cfg.channels))
    h = cfg.ctx_hidden
    prob = lat * (N_CTX * h + h * h + 2 * h)
    # synthesis at full resolution (3 outputs; the chroma 2x2 means are additions)
    s = cfg.synth_hidden
    syn = cfg.synth_in * s + s * 3 + cfg.res3x3 * 3 * 3 * 9
    # each x2 step: 8 multiplications per output sample and direction, on every channel
    # that has reached that level (outputs at level l-1 of a step from level l)
    ups = 0.0
    for lvl in range(cfg.grids - 1, 0, -1):
        ch = sum(cfg.channels[lvl:])
        ups += ch * (4 / 4 ** lvl + 8 / 4 ** (lvl - 1)) / 2  # rows pass at (h, 2w), then cols
    return prob + syn + ups


def param_shapes(cfg: OverfitConfig) -> list[tuple[str, tuple[int, ...], str, str]]:
    """(name, shape, module, kind) of every decoder parameter, in stream order; kind "w" or
    "b" (weights and biases get one quantization step each per module)."""
    s, h = cfg.synth_hidden, cfg.ctx_hidden
    out = [("up.taps", (cfg.grids - 1, 4), "up", "w"),
           ("syn1.weight", (s, cfg.synth_in, 1, 1), "syn", "w"), ("syn1.bias", (s,), "syn", "b"),
           ("syn2.weight", (3, s, 1, 1), "syn", "w"), ("syn2.bias", (3,), "syn", "b")]
    for i in range(cfg.res3x3):
        out += [(f"res.{i}.weight", (3, 3, 3, 3), "syn", "w"), (f"res.{i}.bias", (3,), "syn", "b")]
    out += [("prob.grid_bias", (cfg.grids, 2), "prob", "b"),
            ("prob.l1.weight", (h, N_CTX), "prob", "w"), ("prob.l1.bias", (h,), "prob", "b"),
            ("prob.l2.weight", (h, h), "prob", "w"), ("prob.l2.bias", (h,), "prob", "b"),
            ("prob.l3.weight", (2, h), "prob", "w"), ("prob.l3.bias", (2,), "prob", "b")]
    return out


def grid_shapes(cfg: OverfitConfig, height: int, width: int) -> list[tuple[int, int]]:
    """(rows, columns) of each latent grid: grid 0 the picture rounded up to even (its 2x2
    means give the chroma planes), grid l >= 1 ceil(size / 2**l): no padding to a multiple of
    2**grids, whose latents would cost bits for pixels that do not exist."""
    out = [(2 * -(-height // 2), 2 * -(-width // 2))]
    for lvl in range(1, cfg.grids):
        out.append((-(-height // (1 << lvl)), -(-width // (1 << lvl))))
    return out
