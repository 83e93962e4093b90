"""The two network classes of neural RDOQ (Kianfar et al. 2020): tiny, conditioned on QP,
block size, component and scan through input channels (features.py), one net for all sizes.

- :class:`FCN` decides every coefficient of a block at once: 1x1 conv, two 3x3 convs
  (receptive field 5x5 around each coefficient, plus the hand-made CG / block context
  channels), 1x1 conv to the class logits.
- :class:`ARNet` is the per-position step of the auto-regressive network: an MLP on the
  coefficient's own features and the running state of the decisions already taken later in
  the scan (``features.ar_state_features`` in training by teacher forcing with RDOQ's
  levels, ``features.ar_infer`` at inference, all blocks of a batch in one numba call).
"""

from __future__ import annotations

import torch
from torch import nn

from codeclab.codecs.hevc.nrdoq.features import N_CLASSES, N_LOCAL, N_STATE

__all__ = ["FCN", "ARNet", "build", "param_count", "flops_per_coeff"]


class FCN(nn.Module):
    def __init__(self, ch: int = 16) -> None:
        super().__init__()
        self.ch = ch
        self.net = nn.Sequential(
            nn.Conv2d(N_LOCAL, ch, 1), nn.ReLU(),
            nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(),
            nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(),
            nn.Conv2d(ch, N_CLASSES, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N_LOCAL, n, n) -> (B, N_CLASSES, n, n) logits."""
        return self.net(x)


class ARNet(nn.Module):
    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.hidden = hidden
        self.net = nn.Sequential(nn.Linear(N_LOCAL + N_STATE, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, N_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(R, N_LOCAL + N_STATE) rows (one per active coefficient) -> (R, N_CLASSES) logits."""
        return self.net(x)


def build(kind: str, width: int | None = None) -> nn.Module:
    if kind == "fcn":
        return FCN(width or 16)
    if kind == "ar":
        return ARNet(width or 32)
    raise ValueError(f"unknown nrdoq model {kind!r} (fcn, ar)")


def param_count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def flops_per_coeff(m: nn.Module) -> int:
    """Multiply-accumulates x 2 per coefficient decided (convs: per pixel; AR: per active
    coefficient, inactive ones cost nothing)."""
    total = 0
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            total += 2 * mod.in_channels * mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear):
            total += 2 * mod.in_features * mod.out_features
    return total
