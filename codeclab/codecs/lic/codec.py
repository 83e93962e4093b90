"""Codec ``lic``: the learned intra codec over :class:`Frame` objects (YUV 4:2:0, 8-16 bit).

Colour handling (what PSNR is measured on): the model codes YUV 4:4:4 with each plane
normalised to [0, 1] by the bit depth (``v / (2**bd - 1)``); 4:2:0 chroma is upsampled x2
bilinearly on the way in, and the decoded chroma is brought back to 4:2:0 by a 2x2 mean.
The picture is padded to a multiple of 64 by edge replication and cropped after decoding,
so the output frame has exactly the input's format and metrics compare the same planes as
for HEVC. The YUV matrix is passed through untouched (the model sees Y'CbCr as given).

Packet payload (little endian): ``b"LIC"``, version u8, model-id length u8 + ASCII id,
quality u8, bit depth u8, width u16, height u16, padded width u16, padded height u16,
LOF steps u16 (informative), then the entropy-coded latents (:mod:`entropy`).
"""

from __future__ import annotations

import functools
import hashlib
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from codeclab.base.errors import BitstreamError, FormatError, InputError, UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.base.packet import Packet
from codeclab.codecs.base import CodecSpec
from codeclab.codecs.lic.entropy import EntropyCoder
from codeclab.codecs.lic.model import STRIDE, LicConfig, LicModel, output_to_420, planes_to_input

__all__ = ["SPEC", "LicOptions", "LicEncoder", "LicDecoder", "LoadedModel", "load_model", "DEFAULT_WEIGHTS", "VERSION",
           "pad_planes", "encode_picture", "decode_picture"]

VERSION = 1
MAGIC = b"LIC"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "lic_msp_default.pt"
_HDR = struct.Struct("<BBHHHHH")  # quality, bit depth, w, h, padded w, padded h, lof steps


@dataclass(frozen=True)
class LicOptions:
    quality: int = 3  # rate point, 1 (lowest rate) .. number of rate points of the model
    lof_steps: int = 0  # latent overfitting iterations at encode time (0: off)
    model: str | None = None  # weights file; None: the shipped default
    device: str = "cpu"


@dataclass
class LoadedModel:
    """A network in eval mode plus its exact entropy coder and identity."""

    model: LicModel
    coder: EntropyCoder
    model_id: str


def _state_from_file(path: Path) -> tuple[dict, dict, str | None]:
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as e:
        raise InputError(f"{path}: cannot load lic weights ({e})") from None
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise InputError(f"{path}: not a lic weights file or training checkpoint")
    return ck["model"], ck["config"], ck.get("model_id")


def model_id_of(state: dict) -> str:
    """Short content hash of the (fp16) weights: the decoder refuses other weights."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().to(torch.float16).cpu().numpy().tobytes())
    return "lic-" + h.hexdigest()[:12]


@functools.lru_cache(maxsize=4)
def _load(path: str) -> LoadedModel:
    state, cfg, mid = _state_from_file(Path(path))
    # the shipped precision is fp16; round a training checkpoint the same way so a model
    # id always names exactly the numbers used
    state = {k: v.to(torch.float16).float() if v.is_floating_point() else v for k, v in state.items()}
    model = LicModel(LicConfig(**cfg))
    model.load_state_dict(state)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedModel(model, EntropyCoder(model), mid or model_id_of(state))


def load_model(path: str | Path | None = None) -> LoadedModel:
    """Load (once per process) a weights file or a training checkpoint."""
    p = Path(path) if path else DEFAULT_WEIGHTS
    if not p.exists():
        raise InputError(f"{p}: lic weights not found" + (" (no shipped default yet)" if path is None else ""))
    return _load(str(p.resolve()))


def pad_planes(planes: tuple[np.ndarray, ...], stride: int = STRIDE) -> tuple[torch.Tensor, torch.Tensor]:
    """Y, U, V (4:2:0) -> luma (1,1,H',W') and chroma (1,2,H'/2,W'/2) int tensors, edge-padded
    to a multiple of ``stride``."""
    y, u, v = planes
    h, w = y.shape
    ph, pw = -h % stride, -w % stride
    yt = torch.from_numpy(y.astype(np.int32))[None, None].float()
    uv = torch.from_numpy(np.stack([u, v]).astype(np.int32))[None].float()
    if ph or pw:
        yt = F.pad(yt, (0, pw, 0, ph), mode="replicate")
        uv = F.pad(uv, (0, pw // 2, 0, ph // 2), mode="replicate")
    return yt, uv


def _check_format(fmt: VideoFormat) -> None:
    if fmt.chroma != "420":
        raise FormatError(f"lic codes YUV 4:2:0 only, got {fmt.chroma} ({fmt.pix_fmt}); convert first")
    if fmt.width > 65535 or fmt.height > 65535:
        raise FormatError(f"lic: picture {fmt.width}x{fmt.height} too large")


def encode_picture(lm: LoadedModel, frame: Frame, quality: int, lof_steps: int = 0) -> bytes:
    """One frame -> lic payload bytes."""
    fmt = frame.format
    _check_format(fmt)
    model = lm.model
    if not 1 <= quality <= model.qualities:
        raise UsageError(f"lic: quality {quality} outside 1..{model.qualities} of model {lm.model_id}")
    yt, uv = pad_planes(frame.planes)
    q = torch.tensor([quality - 1])
    with torch.no_grad():
        x = planes_to_input(yt, uv[:, :1], uv[:, 1:], fmt.max_value)
        y = model.g_a(x) * model.gain(q)
    if lof_steps > 0:
        from codeclab.codecs.lic.lof import optimise_latents

        y_hat, z_hat = optimise_latents(lm, x, y, q, yt / fmt.max_value, uv / fmt.max_value, lof_steps)
    else:
        with torch.no_grad():
            y_hat, z_hat = torch.round(y), torch.round(model.h_a(y))
    latents = lm.coder.encode(y_hat, z_hat)
    mid = lm.model_id.encode("ascii")
    hdr = MAGIC + bytes([VERSION, len(mid)]) + mid + _HDR.pack(
        quality, fmt.bit_depth, fmt.width, fmt.height, yt.shape[-1], yt.shape[-2], min(lof_steps, 65535))
    return hdr + latents


def parse_header(data: bytes) -> tuple[dict, int]:
    """Payload header -> fields and the offset of the latents."""
    if len(data) < 5 or data[:3] != MAGIC:
        raise BitstreamError("lic payload: bad magic (not a lic frame)")
    if data[3] != VERSION:
        raise BitstreamError(f"lic payload: version {data[3]} not supported (this decoder reads {VERSION})")
    n = data[4]
    off = 5 + n + _HDR.size
    if len(data) < off:
        raise BitstreamError("lic payload: header truncated")
    mid = data[5 : 5 + n].decode("ascii", "replace")
    q, bd, w, h, pw, ph, lof = _HDR.unpack_from(data, 5 + n)
    if pw % STRIDE or ph % STRIDE or pw < w or ph < h or pw - w >= STRIDE or ph - h >= STRIDE or w % 2 or h % 2:
        raise BitstreamError(f"lic payload: inconsistent sizes {w}x{h} padded to {pw}x{ph}")
    if not 8 <= bd <= 16:
        raise BitstreamError(f"lic payload: bit depth {bd} outside 8..16")
    return {"model_id": mid, "quality": q, "bit_depth": bd, "width": w, "height": h, "pw": pw, "ph": ph,
            "lof_steps": lof}, off


def decode_picture(lm: LoadedModel, data: bytes, fmt: VideoFormat | None = None) -> Frame:
    """lic payload -> Frame (YUV 4:2:0 at the coded size and bit depth)."""
    hd, off = parse_header(data)
    if hd["model_id"] != lm.model_id:
        raise BitstreamError(f"lic payload: coded with model {hd['model_id']}, loaded model is {lm.model_id}")
    model = lm.model
    if not 1 <= hd["quality"] <= model.qualities:
        raise BitstreamError(f"lic payload: quality {hd['quality']} not in this model")
    cfg = model.cfg
    y_hat, _ = lm.coder.decode(data[off:], cfg.m, hd["ph"] // 16, hd["pw"] // 16, cfg.nz)
    q = torch.tensor([hd["quality"] - 1])
    with torch.no_grad():
        x_hat = model.synthesize(y_hat, q).clamp(0, 1)
        yh, uvh = output_to_420(x_hat)
    mv = (1 << hd["bit_depth"]) - 1
    w, h = hd["width"], hd["height"]
    dt = np.uint8 if hd["bit_depth"] == 8 else np.uint16
    to = lambda t, hh, ww: np.rint(t.double().numpy() * mv)[:hh, :ww].astype(dt)  # noqa: E731
    planes = (to(yh[0, 0], h, w), to(uvh[0, 0], h // 2, w // 2), to(uvh[0, 1], h // 2, w // 2))
    base = fmt or VideoFormat(w, h)
    return Frame(planes, base.with_(width=w, height=h, chroma="420", bit_depth=hd["bit_depth"]))


class LicEncoder:
    def __init__(self, fmt: VideoFormat, options: LicOptions) -> None:
        _check_format(fmt)
        if options.device != "cpu":
            raise UsageError(f"lic: device {options.device!r} not supported (cpu only: the entropy model must be exact)")
        if options.lof_steps < 0:
            raise UsageError("lic: lof_steps must be >= 0")
        self.fmt, self.opt = fmt, options
        self.lm = load_model(options.model)

    def encode(self, frame: Frame) -> list[Packet]:
        t = time.perf_counter()
        data = encode_picture(self.lm, frame, self.opt.quality, self.opt.lof_steps)
        dt = time.perf_counter() - t
        return [Packet(data, frame.index, frame.pts, True,
                       {"bits": 8 * len(data), "quality": self.opt.quality, "encode_s": dt,
                        "model_id": self.lm.model_id})]

    def flush(self) -> list[Packet]:
        return []


class LicDecoder:
    def __init__(self, fmt: VideoFormat, options: LicOptions) -> None:
        self.fmt = fmt
        self.lm = load_model(options.model)

    def decode(self, packet: Packet) -> list[Frame]:
        f = decode_picture(self.lm, packet.data, self.fmt)
        f.index, f.pts = packet.index, packet.pts
        return [f]

    def flush(self) -> list[Frame]:
        return []


SPEC = CodecSpec(
    name="lic",
    description="learned intra codec (MSP probability model, gain-unit rates, optional LOF)",
    options=LicOptions,
    make_encoder=LicEncoder,
    make_decoder=LicDecoder,
    stream_codec=None,
    raw_ext=".clc",
)
