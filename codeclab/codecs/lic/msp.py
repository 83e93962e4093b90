"""Multi-scale progressive (MSP) probability model: which latent elements are coded in
which step, and the small networks that predict each step's Gaussian parameters.

A profile splits the quantized latent ``y_hat`` (C, h, w) into ``levels`` spatial scales
and ``groups`` channel groups. Scale 0 is the polyphase sub-grid of stride ``2**(levels-1)``
(the coarsest view, coded from the hyper-prior alone); scale ``l`` adds the positions of the
stride ``2**(levels-1-l)`` grid not already coded. Within a scale the channel groups follow
each other. Step ``k`` = (scale, group) sees every element decoded in steps ``< k`` in place
(coarser scales sit on their sub-grid, so the first 3x3 convs act as the upsampling) plus the
hyper-prior features. The number of sequential steps is ``levels * groups`` for any picture
size: decoding is O(1) in steps, each step one batched convolution pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Profile", "PROFILES", "step_masks", "StepNet", "MSP"]

LEAK = 0.125  # LeakyReLU slope: a power of two, so the fixed-point path is exact


@dataclass(frozen=True)
class Profile:
    """How many scales and channel groups (steps = levels * groups)."""

    name: str
    levels: int
    groups: int

    @property
    def steps(self) -> int:
        return self.levels * self.groups


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("fast", 2, 1),
        Profile("default", 3, 2),
        Profile("slow", 3, 4),
    )
}


def spatial_level_map(h: int, w: int, levels: int, device: torch.device | None = None) -> torch.Tensor:
    """(h, w) int map: the scale index at which each latent position is coded."""
    lv = torch.full((h, w), levels - 1, dtype=torch.int64, device=device)
    for lvl in range(levels - 2, -1, -1):
        s = 1 << (levels - 1 - lvl)
        lv[::s, ::s] = lvl
    return lv


def step_masks(c: int, h: int, w: int, profile: Profile, device: torch.device | None = None) -> torch.Tensor:
    """(steps, c, h, w) bool: element coded at step k. Disjoint, they cover everything."""
    lv = spatial_level_map(h, w, profile.levels, device)
    gsize = -(-c // profile.groups)
    grp = torch.arange(c, device=device) // gsize
    masks = torch.zeros((profile.steps, c, h, w), dtype=torch.bool, device=device)
    k = 0
    for lvl in range(profile.levels):
        sp = lv == lvl
        for g in range(profile.groups):
            masks[k] = sp[None] & (grp == g)[:, None, None]
            k += 1
    return masks


class StepNet(nn.Module):
    """Predicts (mean, log-scale) of every latent element from context + hyper features.

    Plain convs and LeakyReLU(1/8) only, so :mod:`entropy` can evaluate it in exact
    fixed-point arithmetic (the decoder must reproduce the encoder's parameters bit-exactly).
    """

    def __init__(self, c: int, ch: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c + ch, hidden, 3, padding=1),
            nn.LeakyReLU(LEAK),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.LeakyReLU(LEAK),
            nn.Conv2d(hidden, 2 * c, 1),
        )

    def forward(self, ctx: torch.Tensor, hfeat: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([ctx, hfeat], 1))


class MSP(nn.Module):
    """One StepNet per step; in training all steps run at once on masked contexts."""

    def __init__(self, c: int, ch: int, hidden: int, profile: Profile) -> None:
        super().__init__()
        self.c = c
        self.profile = profile
        self.nets = nn.ModuleList(StepNet(c, ch, hidden) for _ in range(profile.steps))

    def forward(self, y_hat: torch.Tensor, hfeat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced parameters for all elements: returns (mean, log_scale)."""
        b, c, h, w = y_hat.shape
        masks = step_masks(c, h, w, self.profile, y_hat.device)
        known = torch.zeros_like(masks[0])
        mean = torch.zeros_like(y_hat)
        logs = torch.zeros_like(y_hat)
        for k, net in enumerate(self.nets):
            out = net(y_hat * known, hfeat)
            m = masks[k]
            mean = torch.where(m, out[:, :c], mean)
            logs = torch.where(m, out[:, c:], logs)
            known = known | m
        return mean, logs
