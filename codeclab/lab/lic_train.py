"""Training of the learned intra codec (``codeclab lic train --data DIR --val DIR --out RUN``).

Pictures (PNG/JPEG, RGB) are converted once to YUV 4:2:0 8-bit (BT.709, limited range,
chroma 2x2 mean), exactly the kind of input the codec sees, and kept in memory. Each step
takes random even-aligned crops with random flips, a random rate point per crop, and
minimises R + lambda_q * 255^2 * D (D: 6:1:1 weighted MSE on the 4:2:0 planes). Adam with a
step decay of the learning rate; an atomic checkpoint every few minutes; ``--resume`` picks
up from it with the same command (model, optimiser, RNG states, step, wall time).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from codeclab.base.atomic import atomic_write
from codeclab.base.convert import rgb_to_yuv
from codeclab.base.errors import InputError
from codeclab.codecs.lic.model import LicConfig, LicModel, planes_to_input, weighted_mse

__all__ = ["rgb_to_yuv420", "load_pictures", "pictures_as_frames", "train", "export_weights"]

EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")


def rgb_to_yuv420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-bit RGB (H,W,3) -> BT.709 limited-range Y, U, V uint8 planes (4:2:0, 2x2 mean).

    Odd sizes are cropped to even."""
    return rgb_to_yuv(rgb[..., 0], rgb[..., 1], rgb[..., 2], 8, "bt709", "limited", chroma="420")


def load_pictures(folder: str | Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every picture of a folder as YUV 4:2:0 planes (sorted by name, deterministic)."""
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of pictures")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTS)
    if not files:
        raise InputError(f"{folder}: no pictures ({', '.join(EXTS)})")
    out = []
    for p in files:
        try:
            with Image.open(p) as im:
                rgb = np.asarray(im.convert("RGB"))
        except OSError as e:
            raise InputError(f"{p}: cannot read picture ({e})") from None
        out.append(rgb_to_yuv420(rgb))
    return out


def sample_batch(pics, rng: np.random.Generator, batch: int, crop: int):
    """Random crops (even offsets) with random h/v flips -> (Y, UV) uint8 tensors."""
    ys, uvs = [], []
    c2 = crop // 2
    for _ in range(batch):
        y, u, v = pics[int(rng.integers(len(pics)))]
        h, w = y.shape
        if h < crop or w < crop:
            raise InputError(f"training picture {w}x{h} is smaller than the crop {crop}")
        oy = int(rng.integers((h - crop) // 2 + 1))
        ox = int(rng.integers((w - crop) // 2 + 1))
        py = y[2 * oy : 2 * oy + crop, 2 * ox : 2 * ox + crop]
        puv = np.stack([u[oy : oy + c2, ox : ox + c2], v[oy : oy + c2, ox : ox + c2]])
        if rng.random() < 0.5:
            py, puv = py[:, ::-1], puv[:, :, ::-1]
        if rng.random() < 0.5:
            py, puv = py[::-1], puv[:, ::-1]
        ys.append(np.ascontiguousarray(py))
        uvs.append(np.ascontiguousarray(puv))
    return torch.from_numpy(np.stack(ys))[:, None], torch.from_numpy(np.stack(uvs))


def rd_terms(model: LicModel, y8: torch.Tensor, uv8: torch.Tensor, q: torch.Tensor, max_value: int = 255):
    """Per-picture rate (bits per luma pixel) and weighted MSE (in [0,1] units)."""
    x = planes_to_input(y8, uv8[:, :1], uv8[:, 1:], max_value)
    out = model(x, q)
    npix = y8.shape[-1] * y8.shape[-2]
    bits = -(out["lik_y"].log2().sum((1, 2, 3)) + out["lik_z"].log2().sum((1, 2, 3)))
    mse = weighted_mse(out["x_hat"], y8.float() / max_value, uv8.float() / max_value)
    return bits / npix, mse


def lr_at(step: int, steps: int, lr: float) -> float:
    """Step decay: lr until 70% of the run, lr/3 until 90%, lr/10 after."""
    f = step / max(steps, 1)
    return lr if f < 0.7 else lr / 3 if f < 0.9 else lr / 10


@torch.no_grad()
def validate(model: LicModel, pics) -> list[tuple[float, float]]:
    """(bpp, PSNR-YUV 6:1:1) per rate point over full validation pictures (rounded latents)."""
    model.eval()
    res = []
    for qi in range(model.qualities):
        bpp, psnr = [], []
        for y, u, v in pics:
            h, w = (y.shape[0] // 64) * 64, (y.shape[1] // 64) * 64  # val pictures: multiples of 64 crops
            yt = torch.from_numpy(y[:h, :w].copy())[None, None]
            uvt = torch.from_numpy(np.stack([u[: h // 2, : w // 2], v[: h // 2, : w // 2]]))[None]
            r, d = rd_terms(model, yt, uvt, torch.tensor([qi]))
            bpp.append(float(r))
            psnr.append(10 * math.log10(1.0 / max(float(d), 1e-12)))
        res.append((float(np.mean(bpp)), float(np.mean(psnr))))
    model.train()
    return res


def _plain_args(args: argparse.Namespace | dict | None) -> dict:
    """The run's options as plain values: checkpoints and weights must unpickle without
    importing the module that parsed them (argparse keeps the command function in ``func``)."""
    items = vars(args).items() if isinstance(args, argparse.Namespace) else (args or {}).items()
    return {k: v for k, v in items if not callable(v)}


def _save_atomic(obj, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f), binary=True)


def train(args: argparse.Namespace) -> Path:
    """Run (or resume) a training run; returns the checkpoint path."""
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "ckpt.pt"
    log = open(out / "train.log", "a", buffering=1)

    def say(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log.write(line + "\n")

    cfg = LicConfig(profile=args.profile)
    if args.lambdas:
        cfg.lambdas = sorted(args.lambdas)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = LicModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, wall = 0, 0.0
    if args.resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False)
        cfg = LicConfig(**ck["config"])
        model = LicModel(cfg)
        model.load_state_dict(ck["model"])
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        opt.load_state_dict(ck["opt"])
        step, wall = ck["step"], ck["wall_s"]
        rng.bit_generator.state = ck["np_rng"]
        torch.set_rng_state(ck["torch_rng"])
        say(f"resumed from {ckpt_path} at step {step} ({wall / 60:.1f} min trained)")
    else:
        say(f"new run: {json.dumps(cfg.to_dict())} args={_plain_args(args)}")
    pics = load_pictures(args.data)
    val = load_pictures(args.val) if args.val else []
    say(f"{len(pics)} training pictures, {len(val)} validation pictures")
    lam = torch.tensor(cfg.lambdas)
    nq = len(cfg.lambdas)
    t_last_ck = time.time()
    t0 = time.time()
    acc = np.zeros(3)
    while step < args.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr)
        y8, uv8 = sample_batch(pics, rng, args.batch, args.crop)
        q = torch.from_numpy(rng.integers(nq, size=args.batch))
        bpp, mse = rd_terms(model, y8, uv8, q)
        loss = (bpp + lam[q] * 255**2 * mse).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        acc += (loss.item(), bpp.mean().item(), (10 * torch.log10(1 / mse.detach().clamp_min(1e-12))).mean().item())
        if step % args.log_every == 0:
            el = wall + time.time() - t0
            a = acc / args.log_every
            say(f"step {step}/{args.steps} loss {a[0]:.4f} bpp {a[1]:.4f} psnr {a[2]:.2f} dB "
                f"lr {lr_at(step, args.steps, args.lr):.1e} {el / 60:.1f} min")
            acc[:] = 0
        done = step >= args.steps
        if val and (step % args.val_every == 0 or done):
            res = validate(model, val)
            say("val " + " ".join(f"q{i + 1}:{b:.3f}bpp/{p:.2f}dB" for i, (b, p) in enumerate(res)))
        if done or time.time() - t_last_ck > args.ckpt_every:
            el = wall + time.time() - t0
            _save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "wall_s": el,
                          "config": cfg.to_dict(), "np_rng": rng.bit_generator.state,
                          "torch_rng": torch.get_rng_state(), "args": _plain_args(args)}, ckpt_path)
            t_last_ck = time.time()
            say(f"checkpoint step {step} -> {ckpt_path}")
    log.close()
    return ckpt_path


def pictures_as_frames(folder: str | Path):
    """The pictures of a folder as 8-bit BT.709 limited-range YUV 4:2:0 :class:`Frame` objects."""
    from codeclab.base.frame import Frame, VideoFormat

    return [Frame((y, u, v), VideoFormat(y.shape[1], y.shape[0]), i) for i, (y, u, v) in
            enumerate(load_pictures(folder))]


def codec_rd_points(weights: str | Path, frames, lof_steps: int = 0) -> list[dict]:
    """Real bitstream rate and decoded PSNR per rate point, averaged over frames."""
    from codeclab.codecs.lic.codec import decode_picture, encode_picture, load_model
    from codeclab.pipeline.metrics import frame_metrics

    lm = load_model(weights)
    rows = []
    for q in range(1, lm.model.qualities + 1):
        acc = []
        for f in frames:
            data = encode_picture(lm, f, q, lof_steps)
            m = frame_metrics(f, decode_picture(lm, data), ms_ssim=False)
            acc.append((8 * len(data) / (f.format.width * f.format.height), m["psnr_y"], m["psnr_u"], m["psnr_v"],
                        m["psnr_yuv"]))
        a = np.mean(acc, 0)
        rows.append({"quality": q, "bpp": a[0], "psnr_y": a[1], "psnr_u": a[2], "psnr_v": a[3], "psnr_yuv": a[4]})
    return rows


def export_weights(ckpt: str | Path, out: str | Path, val: str | Path | None = None) -> Path:
    """Training checkpoint -> shipped fp16 weights ``out`` (+ model card ``out`` with .md).

    The card records the training command, steps, wall time and the validation rate and
    PSNR of the real codec (bitstream bytes, our decoder's output)."""
    from codeclab.codecs.lic.codec import model_id_of

    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    state = {k: v.detach().to(torch.float16) for k, v in ck["model"].items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    mid = model_id_of(state)
    meta = {"model": state, "config": ck["config"], "model_id": mid, "step": ck.get("step"),
            "wall_s": ck.get("wall_s"), "train_args": _plain_args(ck.get("args"))}
    _save_atomic(meta, out)
    rows = codec_rd_points(out, pictures_as_frames(val)) if val else []
    a = ck.get("args") or {}
    cmd = ("codeclab lic train --data {data} --val {val} --out {out} --steps {steps} --batch {batch} --crop {crop} "
           "--lr {lr} --threads {threads} --seed {seed} --profile {profile} --resume").format(**a) if a else "?"
    lam = ck["config"]["lambdas"]
    lines = [
        f"# lic model card: `{out.name}`", "",
        f"- model id: `{mid}` (sha256 of the fp16 weights; written into every packet)",
        f"- architecture: {json.dumps(ck['config'])}",
        f"- parameters: {sum(v.numel() for v in state.values()):,} (fp16 file {out.stat().st_size / 1e6:.2f} MB)",
        "- training data: the 63 PNG pictures of `shared/media/train` (Debian wallpaper packages, see its"
        " README/MANIFEST), converted to BT.709 limited-range YUV 4:2:0 8-bit; random crops and flips",
        f"- command: `{cmd}`",
        f"- steps: {ck.get('step')} of batch {a.get('batch')}, crop {a.get('crop')}, "
        f"wall time {ck.get('wall_s', 0) / 60:.1f} min on 1 CPU thread (shared 2-core machine)",
        f"- rate points (quality 1..{len(lam)}): lambda = {lam} (loss R + lambda*255^2*(6 MSE_Y+MSE_U+MSE_V)/8)",
        "",
        f"## Validation (`{val}`, never trained on; real bitstream, our decoder, no LOF)" if val else "",
        "",
        "| quality | bpp | PSNR-Y | PSNR-U | PSNR-V | PSNR-YUV (6:1:1) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['quality']} | {r['bpp']:.4f} | {r['psnr_y']:.2f} | {r['psnr_u']:.2f} | {r['psnr_v']:.2f} | "
              f"{r['psnr_yuv']:.2f} |" for r in rows]
    card = out.with_suffix(".md")
    atomic_write(card, lambda f: f.write("\n".join(lines) + "\n"))
    return out
