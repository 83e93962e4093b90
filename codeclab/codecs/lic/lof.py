"""Latent overfitting (LOF): encode-time optimisation of ``y`` and ``z`` for one picture.

The decoder (``h_s``, MSP nets, ``g_s``) is frozen; only the encoder's choice of latents
changes, so the bitstream stays decodable by the unmodified decoder. Gradient steps use a
straight-through rounding proxy (forward: rounded latents, backward: identity) on the RD
loss ``R + lambda_q * 255^2 * D``. A greedy rule keeps a candidate only if the RD cost of the
**actually quantized** latents is lower than the best so far, first for the whole
candidate and, when that fails, for each MSP step's elements (scale x channel group) on
their own, in coding order. The result is therefore never worse than plain rounding
(the first "best" is plain rounding), measured with the model's rate of the rounded
latents; the exact coder's rate differs from it only by the fixed-point parameter tables.
"""

from __future__ import annotations

import torch

from codeclab.codecs.lic.model import output_to_420
from codeclab.codecs.lic.msp import step_masks

__all__ = ["rd_cost", "optimise_latents"]


def _ste(v: torch.Tensor) -> torch.Tensor:
    return v + (torch.round(v) - v).detach()


def rd_cost(model, y_hat: torch.Tensor, z_hat: torch.Tensor, q: torch.Tensor, y_ref: torch.Tensor,
            uv_ref: torch.Tensor) -> torch.Tensor:
    """RD cost of (integer-valued or STE) latents: bits/luma pixel + lambda*255^2*D (6:1:1)."""
    from codeclab.codecs.lic.model import gaussian_likelihood

    zm, zs = model.z_params()
    bits = -gaussian_likelihood(z_hat, zm, zs).log2().sum()
    hfeat = model.h_s(z_hat)
    mean, logs = model.msp(y_hat, hfeat)
    bits = bits - gaussian_likelihood(y_hat, mean, model.scales(logs)).log2().sum()
    x_hat = model.g_s(y_hat * model.inv_gain(q))
    yh, uvh = output_to_420(x_hat)
    d = (6 * ((yh - y_ref) ** 2).mean() + ((uvh - uv_ref) ** 2).mean((0, 2, 3)).sum()) / 8
    lam = model.cfg.lambdas[int(q[0])]
    return bits / (y_ref.shape[-1] * y_ref.shape[-2]) + lam * 255**2 * d


def optimise_latents(lm, x: torch.Tensor, y0: torch.Tensor, q: torch.Tensor, y_ref: torch.Tensor,
                     uv_ref: torch.Tensor, steps: int, lr: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy LOF. ``y0``: the gained latent of the picture; references in [0,1] (padded
    luma and 4:2:0 chroma). Returns integer-valued (y_hat, z_hat)."""
    model = lm.model
    with torch.no_grad():
        z0 = model.h_a(y0)
        best_y, best_z = torch.round(y0), torch.round(z0)
        best = float(rd_cost(model, best_y, best_z, q, y_ref, uv_ref))
    _, c, h, w = y0.shape
    masks = step_masks(c, h, w, model.msp.profile)[:, None]
    y = y0.detach().clone().requires_grad_(True)
    z = z0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([y, z], lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = rd_cost(model, _ste(y), _ste(z), q, y_ref, uv_ref)
        loss.backward()
        opt.step()
        with torch.no_grad():
            cy, cz = torch.round(y), torch.round(z)
            j = float(rd_cost(model, cy, cz, q, y_ref, uv_ref))
            if j < best:
                best, best_y, best_z = j, cy, cz
                continue
            # the whole candidate lost: try each step's elements alone (z kept)
            for m in masks:
                if not bool(((cy != best_y) & m).any()):
                    continue
                ty = torch.where(m, cy, best_y)
                j = float(rd_cost(model, ty, best_z, q, y_ref, uv_ref))
                if j < best:
                    best, best_y = j, ty
    return best_y.detach(), best_z.detach()
