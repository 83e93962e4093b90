"""LOF never makes the RD cost of the quantized latents worse, and stays decodable."""

from __future__ import annotations

import torch
from _lic_helpers import textured_frame

from codeclab.codecs.lic.codec import decode_picture, encode_picture, load_model, pad_planes
from codeclab.codecs.lic.lof import optimise_latents, rd_cost
from codeclab.codecs.lic.model import planes_to_input


def test_lof_never_increases_rd_cost(small_weights):
    torch.manual_seed(0)
    lm = load_model(small_weights)
    m = lm.model
    f = textured_frame(128, 64, seed=2)
    yt, uv = pad_planes(f.planes)
    q = torch.tensor([1])
    x = planes_to_input(yt, uv[:, :1], uv[:, 1:], 255)
    with torch.no_grad():
        y = m.g_a(x) * m.gain(q)
        base = float(rd_cost(m, torch.round(y), torch.round(m.h_a(y)), q, yt / 255, uv / 255))
    yh, zh = optimise_latents(lm, x, y, q, yt / 255, uv / 255, steps=8)
    assert torch.equal(yh, torch.round(yh)) and torch.equal(zh, torch.round(zh))
    with torch.no_grad():
        after = float(rd_cost(m, yh, zh, q, yt / 255, uv / 255))
    assert after <= base


def test_lof_payload_decodes(small_weights):
    lm = load_model(small_weights)
    f = textured_frame(64, 64, seed=3)
    data = encode_picture(lm, f, 2, lof_steps=3)
    out = decode_picture(lm, data)
    assert out.format == f.format
