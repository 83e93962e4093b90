"""The learned intra codec's network: transforms, hyper-prior, gain units, MSP entropy model.

Picture in: YUV 4:4:4, each plane normalised to [0, 1] by its bit depth. Latent
``y = g_a(x) * gain[q]`` (one gain vector per rate point, Cui et al.'s gain units, so one
model serves every quality), ``y_hat = round(y)`` — integers, never mean-shifted, so the
decoder's context is exact. The hyper-prior codes ``z = h_a(y)`` with a per-channel
Gaussian; ``h_s(z_hat)`` gives features that every MSP step sees. Reconstruction is
``g_s(y_hat * inv_gain[q])``.

Everything that decides probabilities (``h_s`` and the MSP step nets) is built from plain
convs and LeakyReLU(1/8) so :mod:`entropy` can run it in exact fixed point.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from codeclab.codecs.lic.msp import LEAK, MSP, PROFILES

__all__ = ["LicConfig", "LicModel", "gaussian_likelihood", "LOG_SCALE_MIN", "LOG_SCALE_MAX", "STRIDE"]

#: total down-sampling of the picture to ``z`` (pad the picture to a multiple of this).
STRIDE = 64
LOG_SCALE_MIN = math.log(0.11)
LOG_SCALE_MAX = math.log(64.0)


@dataclass
class LicConfig:
    n: int = 64  # transform channels
    m: int = 128  # latent channels
    nz: int = 64  # hyper-latent channels
    ch: int = 128  # hyper feature channels fed to each MSP step
    hidden: int = 96  # MSP step-net width
    profile: str = "default"
    #: lambda of each rate point (loss = R + lambda * 255^2 * D, D = (6 MSE_Y + MSE_U + MSE_V) / 8)
    lambdas: list[float] = field(default_factory=lambda: [0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483])

    def to_dict(self) -> dict:
        return asdict(self)


class GDN(nn.Module):
    """Simplified GDN (Johnston et al. 2019): x / (beta + gamma * |x|); inverse multiplies."""

    def __init__(self, c: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(c))
        self.gamma = nn.Parameter(0.1 * torch.eye(c).view(c, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = self.beta.abs() + 1e-3
        gamma = self.gamma.abs()
        # bias added apart: oneDNN's fused bias gives thread-count dependent float32 results
        norm = F.conv2d(x.abs(), gamma) + beta[None, :, None, None]
        return x * norm if self.inverse else x / norm


def _conv(i: int, o: int, k: int = 5, s: int = 2) -> nn.Conv2d:
    return nn.Conv2d(i, o, k, s, k // 2)


def _deconv(i: int, o: int, k: int = 5, s: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(i, o, k, s, k // 2, output_padding=s - 1)


def gaussian_likelihood(y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """P(y) of a unit-width bin under N(mean, scale), computed on the stable tail side."""
    v = (y - mean).abs()
    c = 1.0 / (scale * math.sqrt(2.0))
    hi = 0.5 * torch.erfc(-(0.5 - v) * c)
    lo = 0.5 * torch.erfc(-(-0.5 - v) * c)
    return (hi - lo).clamp_min(1e-9)


class LicModel(nn.Module):
    def __init__(self, cfg: LicConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or LicConfig()
        self.cfg = cfg
        n, m, nz, ch = cfg.n, cfg.m, cfg.nz, cfg.ch
        q = len(cfg.lambdas)
        self.g_a = nn.Sequential(
            _conv(3, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n), _conv(n, m)
        )
        self.g_s = nn.Sequential(
            _deconv(m, n), GDN(n, True), _deconv(n, n), GDN(n, True), _deconv(n, n), GDN(n, True), _deconv(n, 3)
        )
        self.h_a = nn.Sequential(
            nn.Conv2d(m, n, 3, 1, 1), nn.LeakyReLU(LEAK), _conv(n, n), nn.LeakyReLU(LEAK), _conv(n, nz)
        )
        self.h_s = nn.Sequential(
            _deconv(nz, n), nn.LeakyReLU(LEAK), _deconv(n, n), nn.LeakyReLU(LEAK), nn.Conv2d(n, ch, 3, 1, 1)
        )
        self.msp = MSP(m, ch, cfg.hidden, PROFILES[cfg.profile])
        # gain units: log-gains per rate point; initialised so higher quality = finer quantizer
        init = torch.tensor([0.5 * math.log(l / cfg.lambdas[-1]) for l in cfg.lambdas])
        self.log_gain = nn.Parameter(init[:, None].repeat(1, m))
        self.log_inv_gain = nn.Parameter(-init[:, None].repeat(1, m).clone())
        # per-channel Gaussian prior of z
        self.z_mean = nn.Parameter(torch.zeros(nz))
        self.z_log_scale = nn.Parameter(torch.full((nz,), math.log(2.0)))

    @property
    def qualities(self) -> int:
        return self.log_gain.shape[0]

    def gain(self, q: torch.Tensor) -> torch.Tensor:
        return self.log_gain[q].exp()[:, :, None, None]

    def inv_gain(self, q: torch.Tensor) -> torch.Tensor:
        return self.log_inv_gain[q].exp()[:, :, None, None]

    @staticmethod
    def scales(log_scale: torch.Tensor) -> torch.Tensor:
        return log_scale.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX).exp()

    def z_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.z_mean[None, :, None, None], self.scales(self.z_log_scale)[None, :, None, None]

    def synthesize(self, y_hat: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """``g_s(y_hat * inv_gain[q])`` computed so the float32 result does not depend on the
        thread count: convolutions without fused bias (oneDNN's fused-bias kernels split work
        differently per thread count), bias added as a separate elementwise op."""
        h = y_hat * self.inv_gain(q)
        for layer in self.g_s:
            if isinstance(layer, nn.ConvTranspose2d):
                h = F.conv_transpose2d(h, layer.weight, None, layer.stride, layer.padding, layer.output_padding)
                h = h + layer.bias[None, :, None, None]
            else:
                h = layer(h)
        return h

    def forward(self, x: torch.Tensor, q: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass: noisy latents for the rate, straight-through rounding for the rest.

        In eval mode the rate is that of the rounded latents (what the coder spends, up to
        the fixed-point parameter tables)."""
        y = self.g_a(x) * self.gain(q)
        z = self.h_a(y)
        z_hat = z + (torch.round(z) - z).detach()
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5) if self.training else z_hat
        zm, zs = self.z_params()
        lik_z = gaussian_likelihood(z_noisy, zm, zs)
        hfeat = self.h_s(z_hat)
        y_hat = y + (torch.round(y) - y).detach()
        mean, logs = self.msp(y_hat, hfeat)
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5) if self.training else y_hat
        lik_y = gaussian_likelihood(y_noisy, mean, self.scales(logs))
        x_hat = self.g_s(y_hat * self.inv_gain(q))
        return {"x_hat": x_hat, "lik_y": lik_y, "lik_z": lik_z, "y": y}


def planes_to_input(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, max_value: int) -> torch.Tensor:
    """(B,1,H,W) luma + (B,1,H/2,W/2) chroma integer planes -> (B,3,H,W) in [0,1].

    4:2:0 chroma is upsampled x2 bilinearly (sample centres, align_corners=False)."""
    s = 1.0 / max_value
    uv = torch.cat([u, v], 1).float() * s
    uv = F.interpolate(uv, scale_factor=2, mode="bilinear", align_corners=False)
    return torch.cat([y.float() * s, uv], 1)


def output_to_420(x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,3,H,W) model output -> luma (B,1,H,W) and 4:2:0 chroma (B,2,H/2,W/2), 2x2 mean."""
    return x_hat[:, :1], F.avg_pool2d(x_hat[:, 1:], 2)


def weighted_mse(x_hat: torch.Tensor, y: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Per-picture (6 MSE_Y + MSE_U + MSE_V) / 8 on the 4:2:0 planes, values in [0,1]."""
    yh, uvh = output_to_420(x_hat)
    my = ((yh - y) ** 2).mean((1, 2, 3))
    muv = ((uvh - uv) ** 2).mean((2, 3))
    return (6 * my + muv[:, 0] + muv[:, 1]) / 8
