"""The overfitted codec's decoder, as a float torch model for the encoder to optimise.

What a picture is coded as (everything per picture, nothing trained on a dataset):

- a **latent pyramid**: ``grids`` integer grids, grid ``l`` at 1/2^l of the luma size
  (ceil(size / 2^l); grid 0 rounded up to even), ``channels[l]`` channels each;
- **upsampling**: the coarse grids are brought to the luma resolution by a cascade of
  learned x2 steps (one separable, symmetric 8-tap filter per step, shared by the
  channels: 4 numbers a step);
- **synthesis at full resolution**: 1x1 convs (ReLU) to 3 outputs per luma position
  (Y, U, V), then ``res3x3`` residual 3x3 convs on those 3 channels (the last without
  ReLU); the chroma planes are the 2x2 means of outputs 1 and 2, so 4:2:0 is coded
  natively. (A synthesis at half resolution, 4 luma phases + U + V per position, is
  cheaper, but smooth content then needs the full-resolution grid to undo the 2x2
  structure: on a training picture it cost 1.6x the latent bits at 1.9 dB lower PSNR
  after 800 iterations.)
- a **probability model** per latent (Laplace, mean and log-scale) from a tiny MLP over a
  context; see :mod:`.context` for the two context orders (multi-scale progressive, and
  raster auto-regressive for the comparison).

Every operation here has an exact integer twin in :mod:`.fixed` (the decoder), so the
parameters the encoder finds here decode to the same picture on any machine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from codeclab.codecs.overfit.config import LOG_SCALE_MAX, LOG_SCALE_MIN, N_CTX, OverfitConfig, grid_shapes
from codeclab.codecs.overfit.context import AR_OFFSETS, MSP_AVAILABLE, NEIGHBOURS, STAGES

__all__ = ["OverfitModel", "upsample2", "BICUBIC_TAPS", "laplace_bits", "context_tensors", "named_decoder_params"]

#: taps (a, b, c, d) of the symmetric 8-tap x2 filter [a, b, c, d, d, c, b, a] that
#: reproduce Keys' bicubic (a = -0.5) at output offsets of 1/4 sample: the starting point
BICUBIC_TAPS = (-0.0234375, -0.0703125, 0.2265625, 0.8671875)


def upsample2(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """x2 in both directions with the symmetric 8-tap filter (a, b, c, d), edges replicated.

    even output 2m = a x[m-2] + c x[m-1] + d x[m] + b x[m+1]; odd 2m+1 mirrors it.
    """
    a, b, c, d = taps[0], taps[1], taps[2], taps[3]

    def one_dim(t: torch.Tensor) -> torch.Tensor:  # along the last axis
        n = t.shape[-1]
        p = F.pad(t, (2, 2, 0, 0), mode="replicate")
        even = a * p[..., 0:n] + c * p[..., 1:n + 1] + d * p[..., 2:n + 2] + b * p[..., 3:n + 3]
        odd = b * p[..., 1:n + 1] + d * p[..., 2:n + 2] + c * p[..., 3:n + 3] + a * p[..., 4:n + 4]
        return torch.stack([even, odd], -1).flatten(-2)

    y = one_dim(x)
    return one_dim(y.transpose(-1, -2)).transpose(-1, -2)


# ---------------------------------------------------------------------------------------
# torch: every latent at once (training)

#: rows of F.unfold's 3x3 (row-major offsets) holding each neighbour, and 5x5 for the AR order
_NB_ROWS = [(dy + 1) * 3 + dx + 1 for dy, dx in NEIGHBOURS]
_AR_ROWS = [(dy + 2) * 5 + dx + 2 for dy, dx in AR_OFFSETS]


def _windows(g: torch.Tensor, size: int) -> torch.Tensor:
    """(size*size, c, h, w): the zero-padded size x size window of every latent of g (c, h, w),
    offsets row-major (F.unfold: its backward is one fold, far cheaper than a convolution's)."""
    c, h, w = g.shape
    return F.unfold(g[:, None], size, padding=size // 2).reshape(c, size * size, h, w).transpose(0, 1)


def _parent_windows(lat: list[torch.Tensor], lvl: int) -> torch.Tensor:
    """(9, c, ceil(h/2), ceil(w/2)): the 3x3 window of each latent's parent, on the parent grid."""
    _, c, h, w = lat[lvl].shape
    if lvl + 1 >= len(lat):
        return lat[lvl].new_zeros(9, c, (h + 1) // 2, (w + 1) // 2)
    parent = lat[lvl + 1]
    cp = parent.shape[1]
    return _windows(parent[0, [ch % cp for ch in range(c)]], 3)


def context_tensors(lat: list[torch.Tensor], order: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Contexts (21, N) channels first, values (N,) and grid index (N,) of every latent.

    msp: teacher-forced per stage (what a stage must not see is zero); ar: the causal 5x5
    half-window. The order of the N latents is irrelevant to the rate. Channels first keeps
    the MLP's matrix products long and contiguous (much faster on the CPU)."""
    ctxs, vals, grids = [], [], []
    for lvl, y in enumerate(lat):
        _, c, h, w = y.shape
        g = y[0]  # (c, h, w)
        par = _parent_windows(lat, lvl)  # (9, c, h/2, w/2)
        if order == "msp":
            nb = _windows(g, 3)[_NB_ROWS]  # (8, c, h, w)
            for s, (py, px) in enumerate(STAGES):
                rows, cols = (h - py + 1) // 2, (w - px + 1) // 2
                n = c * rows * cols
                avail = torch.tensor(MSP_AVAILABLE[s], dtype=g.dtype, device=g.device)[:, None]
                onehot = torch.zeros(4, 1, dtype=g.dtype, device=g.device)
                onehot[s] = 1.0
                ctxs.append(torch.cat([nb[:, :, py::2, px::2].reshape(8, n) * avail, onehot.expand(4, n),
                                       par[:, :, :rows, :cols].reshape(9, n)], 0))
                vals.append(g[:, py::2, px::2].reshape(-1))
        else:
            nb = _windows(g, 5)[_AR_ROWS]  # (12, c, h, w)
            pu = par.repeat_interleave(2, -2).repeat_interleave(2, -1)[:, :, :h, :w]
            ctxs.append(torch.cat([nb, pu], 0).reshape(N_CTX, -1))
            vals.append(g.reshape(-1))
        grids.append(torch.full((c * h * w,), lvl, dtype=torch.long, device=g.device))
    return torch.cat(ctxs, 1), torch.cat(vals), torch.cat(grids)


class ProbModel(nn.Module):
    """Context MLP: N_CTX inputs -> hidden (ReLU) -> hidden (ReLU) -> (mean, log-scale),
    plus a learned (mean, log-scale) offset per grid."""

    def __init__(self, hidden: int, grids: int) -> None:
        super().__init__()
        self.l1 = nn.Linear(N_CTX, hidden)
        self.l2 = nn.Linear(hidden, hidden)
        self.l3 = nn.Linear(hidden, 2)
        self.grid_bias = nn.Parameter(torch.zeros(grids, 2))
        with torch.no_grad():
            self.l3.weight.mul_(0.1)
            self.l3.bias.zero_()

    def forward(self, ctx: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ctx (N_CTX, N) channels first, grid (N,) grid index of each latent -> mean, log-scale (N,)."""
        h = F.relu(torch.addmm(self.l1.bias[:, None], self.l1.weight, ctx))
        h = F.relu(torch.addmm(self.l2.bias[:, None], self.l2.weight, h))
        out = torch.addmm(self.l3.bias[:, None], self.l3.weight, h) + self.grid_bias[grid].T
        return out[0], out[1]


class OverfitModel(nn.Module):
    """Latents + upsampling + synthesis + probability model of one picture."""

    def __init__(self, cfg: OverfitConfig, height: int, width: int, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.height, self.width = height, width
        shapes = grid_shapes(cfg, height, width)
        # every initial value from ``seed`` (same picture and seed, same start), without
        # touching the caller's global random state
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.latents = nn.ParameterList(
                nn.Parameter(0.01 * torch.randn(1, c, *shapes[lvl])) for lvl, c in enumerate(cfg.channels))
            self.up_taps = nn.Parameter(torch.tensor([BICUBIC_TAPS] * (cfg.grids - 1)))
            s = cfg.synth_hidden
            self.syn1 = nn.Conv2d(cfg.synth_in, s, 1)
            self.syn2 = nn.Conv2d(s, 3, 1)
            self.res = nn.ModuleList(nn.Conv2d(3, 3, 3, padding=1) for _ in range(cfg.res3x3))
            for conv in self.res:  # residual branches start as the identity
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
            self.prob = ProbModel(cfg.ctx_hidden, cfg.grids)

    # ---------------------------------------------------------------- synthesis -----------
    def synthesize(self, lat: list[torch.Tensor]) -> torch.Tensor:
        """(1, 3, H, W) at grid 0's size: Y and full-resolution U, V in [0, 1] (not clamped)."""
        return self.synthesize_from(self.upsampled(lat))

    def upsampled(self, lat: list[torch.Tensor]) -> torch.Tensor:
        """(1, channels, H, W): every grid brought to grid 0's size (the synthesis input)."""
        g = self.cfg.grids
        u = lat[g - 1]
        for lvl in range(g - 2, -1, -1):  # the step to level lvl uses taps[lvl]
            h, w = lat[lvl].shape[-2:]
            u = torch.cat([lat[lvl], upsample2(u, self.up_taps[lvl])[..., :h, :w]], 1)
        return u

    def synthesize_from(self, u: torch.Tensor) -> torch.Tensor:
        """The synthesis of an upsampled stack (:meth:`upsampled`)."""
        ch, h, w = u.shape[1:]
        x = u.reshape(ch, h * w)  # the 1x1 convs as matrix products (channels first): cheaper backward
        hid = F.relu(torch.addmm(self.syn1.bias[:, None], self.syn1.weight[:, :, 0, 0], x))
        y = (torch.addmm(self.syn2.bias[:, None], self.syn2.weight[:, :, 0, 0], hid) + 0.5).reshape(1, 3, h, w)
        for i, conv in enumerate(self.res):
            r = conv(y)
            y = y + (F.relu(r) if i < len(self.res) - 1 else r)
        return y

    @staticmethod
    def to_planes(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Synthesis output -> luma and the two chroma planes (2x2 means)."""
        c = F.avg_pool2d(y[:, 1:], 2)
        return y[0, 0], c[0, 0], c[0, 1]

    # ---------------------------------------------------------------- rate ----------------
    def rate_bits(self, lat: list[torch.Tensor]) -> torch.Tensor:
        """Total bits of the latents under the probability model (Laplace, unit bins)."""
        return self.rate_from(*context_tensors(lat, self.cfg.prob_model))

    def rate_from(self, ctx: torch.Tensor, v: torch.Tensor, grid: torch.Tensor,
                  counts: torch.Tensor | None = None) -> torch.Tensor:
        """Total bits of latents ``v`` given their contexts (:func:`context_tensors`);
        ``counts``: how many latents each column stands for (deduplicated contexts)."""
        mu, log_b = self.prob(ctx, grid)
        b = torch.exp(log_b.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX))
        bits = laplace_bits(v, mu, b)
        return (bits if counts is None else bits * counts).sum()


def laplace_bits(v: torch.Tensor, mu: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """-log2 P(v) for a Laplace(mu, b) integrated over [v - 1/2, v + 1/2]."""
    def cdf(t: torch.Tensor) -> torch.Tensor:
        z = (t - mu) / b
        return 0.5 + 0.5 * torch.sign(z) * (1 - torch.exp(-z.abs()))

    p = cdf(v + 0.5) - cdf(v - 0.5)
    return -torch.log2(p.clamp_min(2 ** -24))


def named_decoder_params(model: OverfitModel) -> dict[str, torch.Tensor]:
    """The decoder's parameters (latents excluded) by the names of config.param_shapes."""
    out = {"up.taps": model.up_taps}
    out.update((n, p) for n, p in model.named_parameters() if not n.startswith(("latents", "up_taps")))
    return out
