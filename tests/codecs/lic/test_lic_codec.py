"""Codec ``lic`` through the registry: sizes, bit depths, errors, cross-process determinism."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from _lic_helpers import textured_frame

from codeclab.base.errors import BitstreamError, FormatError, UsageError
from codeclab.base.frame import VideoFormat
from codeclab.codecs.base import Packet, get_codec, make_options
from codeclab.codecs.lic.codec import parse_header


def _codec(weights, **kw):
    spec = get_codec("lic")
    return spec, make_options(spec, {"model": weights, **kw})


def _round_trip(weights, frame, **kw):
    spec, opt = _codec(weights, **kw)
    pkt = spec.make_encoder(frame.format, opt).encode(frame)[0]
    out = spec.make_decoder(frame.format, opt).decode(pkt)[0]
    return pkt, out


@pytest.mark.parametrize("size", [(64, 64), (66, 34), (130, 98), (200, 2)])
def test_any_size_is_padded_and_cropped(small_weights, size):
    f = textured_frame(*size)
    pkt, out = _round_trip(small_weights, f, quality=2)
    assert out.format == f.format
    assert [p.shape for p in out.planes] == [p.shape for p in f.planes]
    hd, _ = parse_header(pkt.data)
    assert (hd["width"], hd["height"]) == size
    assert hd["pw"] % 64 == 0 and hd["ph"] % 64 == 0


def test_ten_bit(small_weights):
    f = textured_frame(96, 64, bit_depth=10)
    _, out = _round_trip(small_weights, f, quality=3)
    assert out.format.bit_depth == 10 and out.planes[0].dtype == np.uint16
    assert int(out.planes[0].max()) <= 1023


def test_unsupported_chroma_and_options(small_weights):
    spec, opt = _codec(small_weights)
    with pytest.raises(FormatError):
        spec.make_encoder(VideoFormat(64, 64, "444"), opt)
    with pytest.raises(UsageError):
        make_options(spec, {"qp": 3})
    spec, opt = _codec(small_weights, quality=99)
    with pytest.raises(UsageError):
        spec.make_encoder(VideoFormat(64, 64), opt).encode(textured_frame(64, 64))


def test_bad_payloads(small_weights):
    spec, opt = _codec(small_weights, quality=1)
    pkt = spec.make_encoder(VideoFormat(64, 64), opt).encode(textured_frame(64, 64))[0]
    dec = spec.make_decoder(VideoFormat(64, 64), opt)
    for bad in (b"", b"XYZ\x01\x00", pkt.data[:10], pkt.data[:3] + b"\x09" + pkt.data[4:]):
        with pytest.raises(BitstreamError):
            dec.decode(Packet(bad, 0))
    n = pkt.data[4]
    other = pkt.data[:5] + b"x" * n + pkt.data[5 + n :]  # another model id
    with pytest.raises(BitstreamError, match="model"):
        dec.decode(Packet(other, 0))


_CHILD = r"""
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from codeclab.codecs.base import Packet, get_codec, make_options
from codeclab.base.frame import VideoFormat
spec = get_codec("lic")
opt = make_options(spec, {"model": sys.argv[2]})
data = open(sys.argv[3], "rb").read()
f = spec.make_decoder(VideoFormat(8, 8), opt).decode(Packet(data, 0))[0]
print(hashlib.sha256(b"".join(p.tobytes() for p in f.planes)).hexdigest())
"""


@pytest.mark.parametrize("size", [(160, 96), pytest.param((1920, 1080), marks=pytest.mark.slow)])
def test_decode_in_another_process_with_other_threads_is_bit_exact(small_weights, tmp_path, size):
    torch.set_num_threads(2)
    f = textured_frame(*size, seed=5)
    pkt, out = _round_trip(small_weights, f, quality=3)
    mine = hashlib.sha256(b"".join(p.tobytes() for p in out.planes)).hexdigest()
    blob = tmp_path / "frame.lic"
    blob.write_bytes(pkt.data)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", _CHILD, "1", small_weights, str(blob)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == mine


def test_through_the_clc_container(small_weights, tmp_path):
    """Packets stored by our container come back and decode with the options it kept."""
    from codeclab.codecs.lic.codec import load_model
    from codeclab.pipeline.clc.container import ClcWriter, StreamHeader, open_clc

    f = textured_frame(96, 64, seed=7)
    spec, opt = _codec(small_weights, quality=2)
    pkt = spec.make_encoder(f.format, opt).encode(f)[0]
    path = tmp_path / "x.clc"
    w = ClcWriter(path, StreamHeader(codec="lic", format=f.format, options=opt, codec_version="1",
                                     model=load_model(small_weights).model_id))
    w.write(pkt)
    w.close()
    with open_clc(path) as r:
        hdr = r.header
        got = list(r)
    assert hdr.codec == "lic" and got[0].data == pkt.data
    dec = spec.make_decoder(hdr.format, make_options(spec, dict(hdr.options)))
    out = dec.decode(got[0])[0]
    ref = spec.make_decoder(f.format, opt).decode(pkt)[0]
    assert all(np.array_equal(a, b) for a, b in zip(out.planes, ref.planes))
