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
3. **final phase**: hard rounding with a straight-through gradient at a small learning rate
   (the same for latents and networks), the best iterate kept;
4. **parameter quantization** (:func:`quantize_decoder`): a half-octave step per tensor
   chosen by the RD cost including the parameters' own bits, RDOQ of the parameter
   integers, the latents tuned to the quantized decoder;
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
from codeclab.codecs.overfit.model import OverfitModel, context_tensors, named_decoder_params
from codeclab.codecs.overfit.payload import encode_payload, param_bytes, tensor_code

__all__ = ["Preset", "PRESETS", "LAMBDAS", "EncodeResult", "encode_planes", "quantize_params", "load_into",
           "choose_steps", "rdoq_params", "tune_latents", "quantize_decoder"]


@dataclass(frozen=True)
class Preset:
    """An iteration budget (total = starts * warmup + main + final)."""

    name: str
    starts: int
    warmup: int
    main: int
    final: int
    lr: float = 1e-2
    latent_lr: float = 10.0  # the latents' learning rate relative to lr before the final phase (they travel far)


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
    return _mse(model.synthesize(lat), tg)


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


class _SpikeClip:
    """Gradient clipping against spikes: a gradient whose norm exceeds ``k`` times the
    running mean of the norms before it (exponential, 0.95) is scaled down to that bound.

    The networks' gradient norms are heavy-tailed (a fast fit on a training picture: median
    ~1,000, 99th percentile ~80,000, largest ~190,000), and one spike inflates the
    optimiser's second moments for many steps. Clipping at 2x the running mean lowered the
    final RD cost by 2.3 % +- 0.9 % (24 paired fits: four training pictures, qualities 1 and
    3, three seeds, preset fast). C3 clips too (a fixed global norm)."""

    def __init__(self, params: list[torch.Tensor], k: float = 2.0) -> None:
        self.params, self.k, self.mean = params, k, math.inf

    def __call__(self) -> None:
        bound = self.k * self.mean
        n = min(float(torch.nn.utils.clip_grad_norm_(self.params, bound)), bound)
        self.mean = n if self.mean == math.inf else 0.95 * self.mean + 0.05 * n


def _train(model: OverfitModel, tg: list[torch.Tensor], lam: float, npix: int, iters: int, lr: float, phase: str,
           tick: Callable[[int, float, float, float], None], *, latent_lr: float = 1.0,
           gen: torch.Generator | None = None) -> float:
    """``iters`` steps of one phase ("warmup", "main" or "final"); returns the last loss.

    The final phase (hard rounding, straight-through gradients) keeps its best iterate and
    returns its loss: each of its forwards measures the exact cost of the rounded latents,
    and its straight-through steps are erratic (on a training picture, 300 of them instead
    of 60 raised the final RD cost by 14 % without the best kept)."""
    lat_ids = {id(p) for p in model.latents}
    # the latents: Adam at latent_lr x lr; the networks: SOAP (Adam in the eigenbasis of a
    # Shampoo preconditioner), which on training pictures at 800 iterations gave an 8-39 %
    # lower RD cost than Adam for the same time per iteration
    lat_opt = torch.optim.Adam([p for p in model.parameters() if id(p) in lat_ids], lr=lr * latent_lr, foreach=True)
    nets = [p for p in model.parameters() if id(p) not in lat_ids]
    net_opt = SOAP(nets, lr=lr, weight_decay=0.0, precondition_frequency=10)
    net_clip = _SpikeClip(nets)
    gen = gen if gen is not None else torch.Generator(device=tg[0].device).manual_seed(0)
    loss = torch.zeros(())
    keep_best = phase == "final"
    best, snap = math.inf, None
    for i in range(iters + (1 if keep_best else 0)):
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
        if keep_best:
            cost = float(loss.detach())
            if cost < best:
                best, snap = cost, [p.detach().clone() for p in model.parameters()]
            if i == iters:
                break
        lat_opt.zero_grad(set_to_none=True)
        net_opt.zero_grad(set_to_none=True)
        # the gradient of the per-pixel loss reaching one latent is ~1e-9, at Adam's epsilon
        # (1e-8), which would then swamp it: optimise the total cost (SSE + lambda * bits)
        (loss * npix).backward()
        net_clip()
        lat_opt.step()
        net_opt.step()
        tick(1, float(loss.detach()), float(d.detach()), float(r.detach()))
    if snap is not None:
        with torch.no_grad():
            for p, v in zip(model.parameters(), snap):
                p.copy_(v)
        return best
    return float(loss.detach())


#: step codes (:func:`.fixed.step_of`) the search tries: weights 2**-4 .. 2**-14.5, biases
#: 2**-2 .. 2**-16.5, in half octaves (on training pictures the step search alone found a
#: 0.2-1.8 % lower RD cost than on powers of two)
_H_RANGE = {"w": range(8, 30), "b": range(4, 34)}
_H_START = 24  # 2**-12


def quantize_params(model: OverfitModel, exps: dict[tuple[str, str], int]) -> IntParams:
    """Round every decoder parameter to the step of its (module, kind) (step codes ``exps``,
    :func:`.fixed.step_of`)."""
    floats = {n: t.detach().double().numpy() for n, t in named_decoder_params(model).items()}
    return _quantize(floats, {n: exps[(m, k)] for n, _, m, k in param_shapes(model.cfg)})


def _quantize(floats: dict[str, np.ndarray], exps: dict[str, int]) -> IntParams:
    """Round each tensor to its step (``exps``: step code per tensor)."""
    ip = IntParams({}, dict(exps))
    for name, x in floats.items():
        ip.ints[name] = np.rint(x / ip.step(name)).astype(np.int64)
    return ip


def load_into(model: OverfitModel, ip: IntParams) -> None:
    """Set the float model's parameters to the quantized values (for RD evaluation)."""
    params = named_decoder_params(model)
    with torch.no_grad():
        for name, t in params.items():
            t.copy_(torch.from_numpy(ip.ints[name] * ip.step(name)).to(t.dtype))


def _mse(y: torch.Tensor, tg: list[torch.Tensor]) -> torch.Tensor:
    """D of a synthesis output: the 6:1:1-weighted MSE of the 4:2:0 planes."""
    yy, u, v = OverfitModel.to_planes(y)
    h, w = tg[0].shape
    ch, cw = tg[1].shape
    mse = [torch.mean((yy[:h, :w] - tg[0]) ** 2), torch.mean((u[:ch, :cw] - tg[1]) ** 2),
           torch.mean((v[:ch, :cw] - tg[2]) ** 2)]
    return (6 * mse[0] + mse[1] + mse[2]) / 8


class _RDEval:
    """RD cost in bits of quantized decoders with the hard latents fixed: ``D * npix / lam``
    + latent bits + parameter bits (the estimate of :func:`.payload.tensor_code`).

    Contexts are built once; a change recomputes only what its module feeds (probability
    model: the latent rate; synthesis: the distortion from the cached upsampled latents;
    upsampling: both of those), a few ms at 416x240: what makes a search over single
    integers affordable."""

    def __init__(self, model: OverfitModel, tg: list[torch.Tensor], lam: float, npix: int) -> None:
        self.model, self.tg, self.scale = model, tg, npix / lam
        self.params = named_decoder_params(model)
        self.module = {n: m for n, _, m, _ in param_shapes(model.cfg)}
        with torch.no_grad():
            self.lat = [t.detach() for t in _latents(model, "hard")]
            # the rate depends on (context, value, grid) only, and most latents share theirs
            # (zeros among zeros): 4-50x fewer columns at 416x240, the same sum
            ctx, v, grid = context_tensors(self.lat, model.cfg.prob_model)
            rows, counts = torch.unique(torch.cat([ctx, v[None], grid[None].to(ctx.dtype)]), dim=1,
                                        return_counts=True)
            self.ctx = (rows[:-2], rows[-2], rows[-1].long(), counts.to(ctx.dtype))
        self.loaded: dict[str, np.ndarray] = {}
        self.u = torch.zeros(())
        self.d_bits = self.r_bits = 0.0
        self.bits: dict[tuple[str, bytes], float] = {}

    def tensor_bits(self, name: str, q: np.ndarray) -> float:
        key = (name, q.tobytes())
        if key not in self.bits:
            self.bits[key] = tensor_code(q)[1]
        return self.bits[key]

    @torch.no_grad()
    def lat_cost(self, ip: IntParams) -> float:
        """``D * npix / lam`` + latent bits with the decoder ``ip``."""
        changed = set()
        for name, t in self.params.items():
            v = ip.ints[name] * ip.step(name)
            if name not in self.loaded or not np.array_equal(self.loaded[name], v):
                changed.add(self.module[name])
                self.loaded[name] = v
                t.copy_(torch.from_numpy(v).to(t.dtype))
        if "up" in changed:
            self.u = self.model.upsampled(self.lat)
        if changed & {"up", "syn"}:
            self.d_bits = float(_mse(self.model.synthesize_from(self.u), self.tg)) * self.scale
        if "prob" in changed:
            self.r_bits = float(self.model.rate_from(*self.ctx))
        return self.d_bits + self.r_bits

    def cost(self, ip: IntParams) -> float:
        return self.lat_cost(ip) + sum(self.tensor_bits(n, q) for n, q in ip.ints.items())

    def gradient(self, ip: IntParams) -> dict[str, np.ndarray]:
        """d(``D * npix / lam`` + latent bits)/d parameter at the decoder ``ip``."""
        self.lat_cost(ip)
        for t in self.params.values():
            t.grad = None
        loss = _mse(self.model.synthesize(self.lat), self.tg) * self.scale + self.model.rate_from(*self.ctx)
        loss.backward()
        out = {n: t.grad.double().numpy().copy() for n, t in self.params.items()}  # type: ignore[union-attr]
        for t in self.params.values():
            t.grad = None
        return out


def choose_steps(model: OverfitModel, tg: list[torch.Tensor], lam: float, npix: int,
                 ev: _RDEval | None = None) -> IntParams:
    """Greedy RD search of the steps on the half-octave grid: one per module and kind (two
    passes), then each tensor's own within two octaves of it (one pass). Per tensor pays
    its 8 bits of side information: tensors of one module differ in how much precision
    they need (on three training pictures: an RD cost 290-460 bits lower before RDOQ,
    80-230 after, the side information counted)."""
    ev = ev if ev is not None else _RDEval(model, tg, lam, npix)
    floats = {n: t.detach().double().numpy().copy() for n, t in named_decoder_params(model).items()}
    group = {n: (m, k) for n, _, m, k in param_shapes(model.cfg)}
    exps = {n: _H_START for n in floats}
    best = ev.cost(_quantize(floats, exps))
    trials: list[tuple[list[str], range]] = []
    for _ in range(2):
        for key in sorted(set(group.values())):
            trials.append(([n for n, g in group.items() if g == key], _H_RANGE[key[1]]))
    for names, hs in trials:
        for h in hs:
            trial = {**exps, **{n: h for n in names}}
            c = ev.cost(_quantize(floats, trial))
            if c < best:
                best, exps = c, trial
    for n in floats:
        hs = _H_RANGE[group[n][1]]
        for h in range(max(exps[n] - 4, hs.start), min(exps[n] + 5, hs.stop)):
            trial = {**exps, n: h}
            c = ev.cost(_quantize(floats, trial))
            if c < best:
                best, exps = c, trial
    ip = _quantize(floats, exps)
    load_into(model, ip)
    return ip


def _set(ip: IntParams, name: str, i: int, value: int) -> IntParams:
    """``ip`` with integer ``i`` of tensor ``name`` set to ``value`` (the other tensors shared)."""
    q = ip.ints[name].copy()
    q.reshape(-1)[i] = value
    return IntParams({**ip.ints, name: q}, ip.exps)


def _greedy(ev: _RDEval, ip: IntParams, best: float, trials: list[tuple[float, str, int, int]],
            limit: float) -> tuple[IntParams, float]:
    """Try ``(estimated cost change, tensor, index, move)`` trials, lowest estimate first,
    while the estimate is below ``limit`` bits; a move (0: to zero, +-1: one step) is kept
    when the full cost falls."""
    for est, name, i, move in sorted(trials):
        if est > limit:
            break
        cand = _set(ip, name, i, 0 if move == 0 else int(ip.ints[name].reshape(-1)[i]) + move)
        c = ev.cost(cand)
        if c < best:
            ip, best = cand, c
    return ip, best


#: RDOQ of the parameters: zeroing is tried where it costs under this many bits of
#: distortion and latent rate (a zero saves at most about that), one-step moves where the
#: predicted change of the full cost is under this, and this many passes of those
_ZERO_LIMIT = 12.0
_STEP_LIMIT = 2.0
_STEP_PASSES = 3


def rdoq_params(ev: _RDEval, ip: IntParams, step_passes: int = _STEP_PASSES,
                curv: dict[str, np.ndarray] | None = None) -> tuple[IntParams, dict[str, np.ndarray]]:
    """RDOQ of the parameters: integers moved where ``D * npix / lam`` + all bits falls.

    1. zeroing (skipped when ``curv`` is given): what zeroing each non-zero integer alone
       costs in distortion and latent bits (one evaluation each), cheapest first, each kept
       if the full cost falls; the zero flags of :mod:`.payload` then code a zero in a bit
       or two (dead ReLU units, inputs a layer ignores: 10-25 % of the integers at low
       rates);
    2. ``step_passes`` passes of one step up or down: rounding each parameter on its own
       is not the best integer point. The gradient at the quantized decoder and the
       curvature along each coordinate (from the zeroing evaluations: returned, for a
       later call) predict each move's cost; only the promising ones are evaluated, best
       first.

    On training pictures (416x240, qualities 1 and 3) this and the zero flags lowered the
    RD cost by 1-7 % against the steps alone, roughly half in parameter bits and half in
    distortion and latent rate."""
    best = ev.cost(ip)
    if curv is None:
        base = ev.lat_cost(ip)
        grad = ev.gradient(ip)
        curv = {}
        trials: list[tuple[float, str, int, int]] = []
        for n, q in ip.ints.items():
            idx = np.flatnonzero(q)
            dz = np.array([ev.lat_cost(_set(ip, n, int(i), 0)) - base for i in idx])
            w = q.reshape(-1)[idx] * ip.step(n)
            # f(w + t) - f(w) = g t + c t^2 / 2 through t = -w gives the curvature c
            c = np.zeros(q.size)
            c[idx] = np.maximum(0.0, 2 * (dz + grad[n].reshape(-1)[idx] * w) / w ** 2)
            c[q.reshape(-1) == 0] = np.median(c[idx]) if idx.size else 0.0
            curv[n] = c
            trials += [(float(d), n, int(i), 0) for d, i in zip(dz, idx)]
        ip, best = _greedy(ev, ip, best, trials, _ZERO_LIMIT)
    for _ in range(step_passes):
        grad = ev.gradient(ip)
        trials = []
        for n, g in grad.items():
            st = ip.step(n)
            up = g.reshape(-1) * st
            pred = -np.abs(up) + 0.5 * curv[n] * st ** 2
            move = np.where(up < 0, 1, -1)
            q = ip.ints[n].reshape(-1)
            bits = ev.tensor_bits(n, ip.ints[n])
            for i in np.flatnonzero(pred < 0):
                db = ev.tensor_bits(n, _set(ip, n, int(i), int(q[i] + move[i])).ints[n]) - bits
                trials.append((float(pred[i]) + db, n, int(i), int(move[i])))
        ip, best = _greedy(ev, ip, best, trials, _STEP_LIMIT)
    return ip, curv


#: latent fine-tuning with the decoder frozen at its quantized values: iterations, learning rate
_TUNE_ITERS = 50
_TUNE_LR = 3e-5


def tune_latents(model: OverfitModel, tg: list[torch.Tensor], lam: float, npix: int, iters: int = _TUNE_ITERS,
                 lr: float = _TUNE_LR) -> float:
    """Adam on the latents alone (hard rounding, straight-through), the decoder frozen at its
    quantized values, keeping the best iterate; returns its cost ``D + lam * R``.

    The latents were fitted to the float decoder; this lets them follow the one that is
    coded. Each step's forward measures the exact cost of the rounded latents it sees, so
    keeping the best costs nothing and the result is never worse than the start (the
    straight-through steps alone are erratic: from 1.5 % lower to 0.4 % higher RD cost on
    training pictures; with the best kept, 0.6-1.9 % lower at quality 1 and 3)."""
    nets = [p for p in model.parameters() if all(p is not q for q in model.latents)]
    for p in nets:
        p.requires_grad_(False)
    opt = torch.optim.Adam(list(model.latents), lr=lr)
    best, keep = math.inf, [p.detach().clone() for p in model.latents]
    try:
        for i in range(iters + 1):
            loss, _, _ = _loss(model, _latents(model, "hard"), tg, lam, npix)
            cost = float(loss.detach())
            if cost < best:
                best, keep = cost, [p.detach().clone() for p in model.latents]
            if i == iters:
                break
            opt.zero_grad(set_to_none=True)
            (loss * npix).backward()
            opt.step()
    finally:
        with torch.no_grad():
            for p, k in zip(model.latents, keep):
                p.copy_(k)
        for p in nets:
            p.requires_grad_(True)
    return best


def quantize_decoder(model: OverfitModel, tg: list[torch.Tensor], lam: float, npix: int) -> IntParams:
    """The decoder as coded, and the latents fitted to it: steps (:func:`choose_steps`),
    RDOQ of the parameters (:func:`rdoq_params`), the latents tuned to the quantized
    decoder (:func:`tune_latents`), then one more RDOQ pass of one-step moves for those
    latents (measured: 0.1-0.4 % lower RD cost; a second zeroing pass there gave another
    0.1-0.2 % for 20 % more time, and is not done). The model is left holding the
    quantized decoder and the tuned latents."""
    ev = _RDEval(model, tg, lam, npix)
    ip, curv = rdoq_params(ev, choose_steps(model, tg, lam, npix, ev))
    load_into(model, ip)
    tune_latents(model, tg, lam, npix)
    ip, _ = rdoq_params(_RDEval(model, tg, lam, npix), ip, 1, curv)
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
    # one learning rate for latents and networks in the final phase (with the main phase's
    # 10x on the latents it ended at a 1.8 % higher RD cost on a training picture)
    _train(model, tg, lam, npix, preset.final, 1e-4, "final", tick, latent_lr=1.0, gen=gen)
    model = model.cpu()
    tg = [t.cpu() for t in tg]
    t_fit = time.perf_counter() - t_start
    ip = quantize_decoder(model, tg, lam, npix)
    lat = [np.clip(np.rint(p.detach().double().numpy()[0]), -R, R).astype(np.int64) for p in model.latents]
    data = encode_payload(cfg, ip, lat, width, height, bit_depth)
    y = synthesize_fx(lat, ip, cfg)
    out = to_samples(y, bit_depth, height, width)
    pbits = 8 * len(param_bytes(ip, cfg))
    return EncodeResult(data, out, {"param_bits": float(pbits), "fit_s": t_fit, "iterations": float(total),
                                    "encode_s": time.perf_counter() - t_start})
