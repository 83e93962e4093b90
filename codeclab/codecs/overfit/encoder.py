"""The encoder: fit latents and decoder to one picture, quantize, entropy code.

The recipe of the overfitted codecs (C3, Cool-chic), on loss ``D + lambda * R`` with ``D``
the 6:1:1-weighted MSE of the 4:2:0 planes in [0, 1] and ``R`` the latent bits per luma
pixel under the probability model:

1. **warm-up**: ``starts`` random initialisations, ``warmup`` iterations each; the best
   continues (the loss landscape of a tiny network has bad basins);
2. **main phase**: Adam on the latents, SOAP on the networks, cosine learning rate from
   ``lr``; latents are soft-rounded with a temperature annealed from 0.3 to 0.1, plus
   uniform noise over a whole quantization bin (the rate of a noisy latent bounds the
   rate of the rounded one; with less noise the model learns to park latents between two
   integers, where the noisy rate is small and the rounded rate is not);
3. **final phase**: hard rounding with a straight-through gradient at a small learning rate;
4. **parameter quantization**: per module (upsampling, synthesis, probability model) one
   power-of-two step for weights and one for biases, chosen by the RD cost including the
   parameters' own bits (a greedy search over the six steps);
5. the stream is written with the integer decoder's probabilities (:mod:`.fixed`), and the
   encoder decodes its own stream with the same integer functions, so what it reports is
   exactly what any decoder returns.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from pytorch_optimizer import SOAP

from codeclab.codecs.overfit.config import OverfitConfig, param_shapes
from codeclab.codecs.overfit.fixed import R, IntParams, synthesize_fx, to_samples
from codeclab.codecs.overfit.model import OverfitModel, named_decoder_params
from codeclab.codecs.overfit.payload import encode_payload, param_bytes

__all__ = ["Preset", "PRESETS", "LAMBDAS", "EncodeResult", "encode_planes", "quantize_params", "load_into"]


@dataclass(frozen=True)
class Preset:
    """An iteration budget (total = starts * warmup + main + final)."""

    name: str
    starts: int
    warmup: int
    main: int
    final: int
    lr: float = 1e-2
    latent_lr: float = 10.0  # learning rate of the latents relative to lr (they must travel far)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("fast", 2, 40, 400, 60),
    Preset("medium", 3, 100, 2500, 300),
    Preset("slow", 4, 200, 8000, 800),
)}

#: quality index 1..8 -> lambda (rate in bits per luma pixel, distortion MSE on [0, 1]):
#: from about HM's rate at QP 37 (quality 1) to beyond QP 22 (quality 8)
LAMBDAS = (4e-3, 2e-3, 1e-3, 5e-4, 2.5e-4, 1.25e-4, 6e-5, 3e-5)


@dataclass
class EncodeResult:
    data: bytes
    planes: tuple[np.ndarray, np.ndarray, np.ndarray]
    stats: dict[str, float]


def soft_round(x: torch.Tensor, t: float) -> torch.Tensor:
    """Differentiable rounding: tends to round(x) as t -> 0 (C3's soft rounding)."""
    m = torch.floor(x) + 0.5
    return m + 0.5 * torch.tanh((x - m) / t) / math.tanh(0.5 / t)


def _targets(planes: tuple[np.ndarray, ...], bit_depth: int, device: torch.device) -> list[torch.Tensor]:
    top = float((1 << bit_depth) - 1)
    return [torch.from_numpy(p.astype(np.float32) / top).to(device) for p in planes[:3]]


def _distortion(model: OverfitModel, lat: list[torch.Tensor], tg: list[torch.Tensor]) -> torch.Tensor:
    y, u, v = model.to_planes(model.synthesize(lat))
    h, w = tg[0].shape
    ch, cw = tg[1].shape
    mse = [torch.mean((y[:h, :w] - tg[0]) ** 2), torch.mean((u[:ch, :cw] - tg[1]) ** 2),
           torch.mean((v[:ch, :cw] - tg[2]) ** 2)]
    return (6 * mse[0] + mse[1] + mse[2]) / 8


def _latents(model: OverfitModel, mode: str, t: float = 0.3, gen: torch.Generator | None = None) -> list[torch.Tensor]:
    """The latents as training sees them: soft-rounded plus uniform noise over a whole bin
    (``mode="soft"``; noise only when a generator is given) or rounded with a
    straight-through gradient (``"hard"``)."""
    out = []
    for p in model.latents:
        x = p.clamp(-R, R)
        if mode == "soft":
            y = soft_round(x, t)
            if gen is not None:
                y = y + (torch.rand(y.shape, generator=gen, device=y.device) - 0.5)
        else:
            y = x + (torch.round(x) - x).detach()
        out.append(y)
    return out


def _loss(model: OverfitModel, lat: list[torch.Tensor], tg: list[torch.Tensor], lam: float,
          npix: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    d = _distortion(model, lat, tg)
    r = model.rate_bits(lat) / npix
    return d + lam * r, d, r


def _psnr(d: float) -> float:
    return 10 * math.log10(1 / max(d, 1e-12))


def _train(model: OverfitModel, tg: list[torch.Tensor], lam: float, npix: int, iters: int, lr: float, phase: str,
           tick: Callable[[int, float, float, float], None], *, latent_lr: float = 1.0,
           gen: torch.Generator | None = None) -> float:
    """``iters`` steps of one phase ("warmup", "main" or "final"); returns the last loss."""
    lat_ids = {id(p) for p in model.latents}
    # the latents: Adam at latent_lr x lr; the networks: SOAP (Adam in the eigenbasis of a
    # Shampoo preconditioner), which on training pictures at 800 iterations gave an 8-39 %
    # lower RD cost than Adam for the same time per iteration
    lat_opt = torch.optim.Adam([p for p in model.parameters() if id(p) in lat_ids], lr=lr * latent_lr, foreach=True)
    net_opt = SOAP([p for p in model.parameters() if id(p) not in lat_ids], lr=lr, weight_decay=0.0,
                   precondition_frequency=10)
    gen = gen if gen is not None else torch.Generator(device=tg[0].device).manual_seed(0)
    loss = torch.zeros(())
    for i in range(iters):
        frac = i / max(iters - 1, 1)
        if phase == "final":
            lat, lr_i = _latents(model, "hard"), lr
        elif phase == "main":  # temperature 0.3 -> 0.1, cosine learning rate
            lat = _latents(model, "soft", t=0.3 - 0.2 * frac, gen=gen)
            lr_i = lr * 0.5 * (1 + math.cos(math.pi * frac))
        else:
            lat, lr_i = _latents(model, "soft", t=0.3, gen=gen), lr
        for g in lat_opt.param_groups:
            g["lr"] = lr_i * latent_lr
        for g in net_opt.param_groups:
            g["lr"] = lr_i
        loss, d, r = _loss(model, lat, tg, lam, npix)
        lat_opt.zero_grad(set_to_none=True)
        net_opt.zero_grad(set_to_none=True)
        # the gradient of the per-pixel loss reaching one latent is ~1e-9, at Adam's epsilon
        # (1e-8), which would then swamp it: optimise the total cost (SSE + lambda * bits)
        (loss * npix).backward()
        lat_opt.step()
        net_opt.step()
        tick(1, float(loss.detach()), float(d.detach()), float(r.detach()))
    return float(loss.detach())


def quantize_params(model: OverfitModel, exps: dict[tuple[str, str], int]) -> IntParams:
    """Round every decoder parameter to its module's step ``2**-e``."""
    params = named_decoder_params(model)
    ints, kinds = {}, {}
    for name, _, module, kind in param_shapes(model.cfg):
        ints[name] = np.rint(params[name].detach().double().numpy() * 2.0 ** exps[(module, kind)]).astype(np.int64)
        kinds[name] = (module, kind)
    return IntParams(ints, dict(exps), kinds)


def load_into(model: OverfitModel, ip: IntParams) -> None:
    """Set the float model's parameters to the quantized values (for RD evaluation)."""
    params = named_decoder_params(model)
    with torch.no_grad():
        for name, t in params.items():
            t.copy_(torch.from_numpy(ip.ints[name] * 2.0 ** -ip.exp(name)).to(t.dtype))


def _rd_with(model: OverfitModel, ip: IntParams, tg: list[torch.Tensor], lam: float, npix: int) -> float:
    """RD cost of the quantized decoder: float model with quantized parameters, hard latents,
    plus the parameters' coded bits."""
    load_into(model, ip)
    with torch.no_grad():
        _, d, r = _loss(model, _latents(model, "hard"), tg, lam, npix)
    return float(d) + lam * (float(r) + 8 * len(param_bytes(ip, model.cfg)) / npix)


def choose_steps(model: OverfitModel, tg: list[torch.Tensor], lam: float, npix: int) -> IntParams:
    """Greedy RD search of the six power-of-two steps (module x weight/bias)."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    exps = {("up", "w"): 12, ("up", "b"): 12, ("syn", "w"): 12, ("syn", "b"): 12, ("prob", "w"): 12,
            ("prob", "b"): 12}
    ranges = {"w": range(4, 15), "b": range(2, 17)}

    def cost(e: dict) -> float:
        model.load_state_dict(saved)
        try:
            return _rd_with(model, quantize_params(model, e), tg, lam, npix)
        except OverflowError:
            return math.inf

    best = cost(exps)
    for _ in range(2):
        for key in exps:
            for e in ranges[key[1]]:
                trial = {**exps, key: e}
                c = cost(trial)
                if c < best:
                    best, exps = c, trial
    model.load_state_dict(saved)
    ip = quantize_params(model, exps)
    load_into(model, ip)
    return ip


def encode_planes(planes: tuple[np.ndarray, np.ndarray, np.ndarray], bit_depth: int, cfg: OverfitConfig,
                  lam: float, preset: Preset, *, seed: int = 0, device: str = "cpu",
                  bar: Callable[[int, dict], None] | None = None) -> EncodeResult:
    """Code one 4:2:0 picture (Y, U, V integer planes); returns the payload and the decoded planes.

    ``bar(n, info)`` is called after every iteration with the training rate (bpp), PSNR and
    RD cost (the encoder's progress bar)."""
    t_start = time.perf_counter()
    dev = torch.device(device)
    height, width = planes[0].shape
    npix = height * width
    tg = _targets(planes, bit_depth, dev)
    total = preset.starts * preset.warmup + preset.main + preset.final

    def tick(n: int, loss: float, d: float, r: float) -> None:
        if bar is not None:
            bar(n, {"bpp": r, "psnr": _psnr(d), "loss": loss})

    gen = torch.Generator(device=dev).manual_seed(seed)  # the noise: same input, same stream
    best, best_loss = None, math.inf
    for s in range(preset.starts):
        m = OverfitModel(cfg, height, width, seed=seed * 1000 + s).to(dev)
        loss = _train(m, tg, lam, npix, preset.warmup, preset.lr, "warmup", tick, latent_lr=preset.latent_lr, gen=gen)
        if loss < best_loss:
            best, best_loss = m, loss
    model = best
    assert model is not None
    _train(model, tg, lam, npix, preset.main, preset.lr, "main", tick, latent_lr=preset.latent_lr, gen=gen)
    _train(model, tg, lam, npix, preset.final, 1e-4, "final", tick, latent_lr=preset.latent_lr, gen=gen)
    model = model.cpu()
    tg = [t.cpu() for t in tg]
    t_fit = time.perf_counter() - t_start
    ip = choose_steps(model, tg, lam, npix)
    lat = [np.clip(np.rint(p.detach().double().numpy()[0]), -R, R).astype(np.int64) for p in model.latents]
    data = encode_payload(cfg, ip, lat, width, height, bit_depth)
    y = synthesize_fx(lat, ip, cfg)
    out = to_samples(y, bit_depth, height, width)
    pbits = 8 * len(param_bytes(ip, cfg))
    return EncodeResult(data, out, {"param_bits": float(pbits), "fit_s": t_fit, "iterations": float(total),
                                    "encode_s": time.perf_counter() - t_start})
