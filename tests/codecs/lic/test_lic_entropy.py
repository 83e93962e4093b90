"""Entropy coder round trip, escapes, exactness of the fixed-point nets, damage detection."""

from __future__ import annotations

import pytest
import torch

from codeclab.base.errors import BitstreamError
from codeclab.codecs.lic.codec import load_model
from codeclab.codecs.lic.entropy import FA, FixedNet, R


def _latents(lm, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    cfg = lm.model.cfg
    y = torch.round(torch.randn(1, cfg.m, 8, 12, generator=g) * scale)
    z = torch.round(torch.randn(1, cfg.nz, 2, 3, generator=g) * scale)
    return y, z


def test_round_trip(small_weights):
    lm = load_model(small_weights)
    y, z = _latents(lm)
    data = lm.coder.encode(y, z)
    y2, z2 = lm.coder.decode(data, y.shape[1], 8, 12, z.shape[1])
    assert torch.equal(y2, y) and torch.equal(z2, z)


def test_escapes_round_trip(small_weights):
    lm = load_model(small_weights)
    y, z = _latents(lm, 1)
    y[0, 0, 0, 0], y[0, 3, 5, 7], z[0, 1, 1, 1] = 5000, -R - 3, 900
    data = lm.coder.encode(y, z)
    y2, z2 = lm.coder.decode(data, y.shape[1], 8, 12, z.shape[1])
    assert torch.equal(y2, y) and torch.equal(z2, z)


def test_damaged_payload_is_an_error(small_weights):
    lm = load_model(small_weights)
    y, z = _latents(lm, 2)
    data = bytearray(lm.coder.encode(y, z))
    with pytest.raises(BitstreamError):
        lm.coder.decode(bytes(data[:-4]), y.shape[1], 8, 12, z.shape[1])
    data[0] ^= 0xFF  # the CRC of the parameter tensors
    with pytest.raises(BitstreamError):
        lm.coder.decode(bytes(data), y.shape[1], 8, 12, z.shape[1])


def test_fixed_point_net_is_exact_and_close_to_float(small_weights):
    lm = load_model(small_weights)
    net = lm.model.msp.nets[0].body
    fx = FixedNet(net)
    g = torch.Generator().manual_seed(3)
    x = torch.round(torch.randn(1, net[0].in_channels, 9, 11, generator=g) * 4)
    a = fx(x.double() * (1 << FA))
    torch.set_num_threads(1)
    try:
        b = fx(x.double() * (1 << FA))
    finally:
        torch.set_num_threads(2)
    assert torch.equal(a, b)
    assert bool((a == torch.round(a)).all())
    ref = net(x)
    assert float((a / (1 << FA) - ref).abs().max()) < 0.05
