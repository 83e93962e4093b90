"""Decoded picture hash SEI (MD5) of codec ``hevc`` (option ``md5``, codecs/hevc/sei.py).

With md5 on, every access unit ends with a SUFFIX_SEI NAL unit whose MD5s are those of the
decoded picture at the coded size; FFmpeg still decodes bit-exactly and verifies the hashes
(err_detect=crccheck), and HM's decoder, when the shared tools have it, checks them by
itself: OK for our streams, an error for a stream with one hash byte flipped.
"""

from __future__ import annotations

import hashlib

import av
import numpy as np
import pytest
from _synth import synth_frames

from codeclab.base.errors import CodecError
from codeclab.bitstream.nal import nal_unit, unescape_rbsp
from codeclab.codecs.base import get_codec, make_options
from codeclab.codecs.refsw import _HM_DECODER, find_binary, hm_decode
from codeclab.codecs.hevc.sei import NAL_SUFFIX_SEI, decoded_picture_hash_rbsp, sei_message

W, H = 70, 46          # coded 72x48: the conformance window crops 2 columns and 2 rows
CW, CH = 72, 48
PIX = {8: "yuv420p", 10: "yuv420p10le"}


def encode(bd: int, md5: bool = True, n: int = 1) -> tuple[list[bytes], list[tuple[np.ndarray, ...]]]:
    """n all-intra pictures of 70x46 through the codec options path; (access units, our
    reconstructions)."""
    spec = get_codec("hevc")
    opts = make_options(spec, {"gop": "ai", "md5": md5, "qp": 27, "ctb": 16, "preset": "fast", "keep_recon": True,
                               "bit_depth": bd})
    frames = synth_frames(PIX[bd], n=n, width=W, height=H, kind="smooth", seed=bd)
    enc = spec.make_encoder(frames[0].format, opts)
    pkts = [p for f in frames for p in enc.encode(f)] + enc.flush()
    return [p.data for p in pkts], [p.props["recon"] for p in pkts]


def nal_units(data: bytes) -> list[bytes]:
    """NAL units (header + escaped payload) of an Annex-B stream with 4-byte start codes."""
    return [n for n in data.split(b"\x00\x00\x00\x01") if n]


def parse_md5_sei(data: bytes) -> list[bytes]:
    """The three MD5 digests of the access unit's decoded picture hash SEI, checking the
    NAL header, the ff_byte-coded payloadType / payloadSize, hash_type and trailing bits."""
    nals = nal_units(data)
    seis = [n for n in nals if (n[0] >> 1) & 0x3F == NAL_SUFFIX_SEI]
    assert len(seis) == 1, "one SUFFIX_SEI per access unit"
    assert nals[-1] == seis[0] and (nals[-2][0] >> 1) & 0x3F == 20, "SEI right after the IDR slice"
    nal = seis[0]
    assert nal[:2] == bytes((NAL_SUFFIX_SEI << 1, 1)), "nuh_layer_id 0, nuh_temporal_id_plus1 1"
    rbsp = unescape_rbsp(nal[2:])
    assert rbsp[0] == 132 and rbsp[1] == 49, "payloadType 132 (decoded_picture_hash), payloadSize 1 + 3 * 16"
    assert rbsp[2] == 0, "hash_type 0 (MD5)"
    assert rbsp[51:] == b"\x80", "one message, then rbsp_trailing_bits"
    return [rbsp[3 + 16 * c:19 + 16 * c] for c in range(3)]


def ffmpeg_decode(data: bytes, **options: str) -> tuple[list[np.ndarray], list[tuple[int, str]]]:
    """Planes of the one picture FFmpeg decodes from ``data`` and its log lines (debug level)."""
    old = av.logging.get_level()
    av.logging.set_level(av.logging.DEBUG)
    try:
        with av.logging.Capture() as logs:
            cc = av.CodecContext.create("hevc", "r")
            cc.options = dict(options)
            frames = list(cc.decode(av.Packet(data))) + list(cc.decode(None))
            assert len(frames) == 1
            planes = [np.from_dlpack(p).copy() for p in frames[0].planes]
    finally:
        av.logging.set_level(old)
    return planes, [(level, msg.strip()) for level, _name, msg in logs]


def md5s(planes: list[np.ndarray], bd: int) -> list[bytes]:
    dt = "<u1" if bd == 8 else "<u2"
    return [hashlib.md5(p.astype(dt).tobytes()).digest() for p in planes]


@pytest.mark.parametrize("bd", [8, 10])
def test_ffmpeg_bit_exact_and_verifies_md5(bd):
    aus, recons = encode(bd, md5=True, n=2)
    plain, plain_recons = encode(bd, md5=False, n=2)
    for data, recon, off, off_recon in zip(aus, recons, plain, plain_recons):
        # md5 only appends the SEI: the rest of the access unit and the pictures are unchanged
        assert data.startswith(off) and data[len(off):len(off) + 4] == b"\x00\x00\x00\x01"
        assert all(np.array_equal(a, b) for a, b in zip(recon, off_recon))
        planes, logs = ffmpeg_decode(data, err_detect="crccheck")
        assert not [m for lv, m in logs if lv <= av.logging.WARNING], logs
        for c in range(3):
            assert planes[c].shape == recon[c].shape and np.array_equal(planes[c], recon[c]), c
        checks = [m for _lv, m in logs if m.startswith("Verifying checksum")]
        assert len(checks) == 1 and checks[0].count("correct") == 3 and "mismatch" not in checks[0], checks


@pytest.mark.parametrize("bd", [8, 10])
def test_sei_md5_is_md5_of_decoded_coded_picture(bd):
    (data,), (recon,) = encode(bd)
    digests = parse_md5_sei(data)
    full, _ = ffmpeg_decode(data, apply_cropping="0")  # the decoded picture before cropping
    assert [p.shape for p in full] == [(CH, CW), (CH // 2, CW // 2), (CH // 2, CW // 2)]
    for c in range(3):
        assert np.array_equal(full[c][:recon[c].shape[0], :recon[c].shape[1]], recon[c])
    assert digests == md5s(full, bd)
    # the coded size matters: the cropped picture hashes differently
    assert all(a != b for a, b in zip(digests, md5s(list(recon), bd)))


def test_sei_message_coding_and_emulation_prevention():
    assert sei_message(132, b"x" * 49)[:2] == bytes((132, 49))
    assert sei_message(300, b"y" * 256)[:4] == bytes((0xFF, 45, 0xFF, 1))  # ff_byte coding
    rbsp = decoded_picture_hash_rbsp([bytes(16)] * 3)  # digests of zeros need 0x03 bytes
    nal = nal_unit(NAL_SUFFIX_SEI, rbsp)
    assert b"\x00\x00\x00" not in nal and b"\x00\x00\x01" not in nal
    assert unescape_rbsp(nal[2:]) == rbsp


def _need_hm() -> None:
    try:
        find_binary(_HM_DECODER, None)
    except CodecError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("bd", [8, 10])
def test_hm_decoder_checks_md5(bd):
    _need_hm()
    aus, recons = encode(bd, n=2)
    out = hm_decode(b"".join(aus), W, H, bd)
    assert out.returncode == 0, out.log
    # HM prints, per picture: [MD5:<Y>,<Cb>,<Cr>,(OK)] with the hashes it computed
    assert out.md5 == [(*(d.hex() for d in parse_md5_sei(a)), True) for a in aus], out.log
    assert "ERROR" not in out.log and "mismatch" not in out.log, out.log
    # its output (cropped, bd-bit) is our reconstruction
    assert len(out.pictures) == len(recons)
    for pic, recon in zip(out.pictures, recons):
        for c in range(3):
            assert np.array_equal(pic[c], recon[c]), c

    # a copy with one byte of the second picture's Cr hash flipped: HM reports the mismatch
    digests = parse_md5_sei(aus[1])
    wrong = digests[:2] + [bytes((digests[2][0] ^ 1,)) + digests[2][1:]]
    head = aus[1][:aus[1].rindex(b"\x00\x00\x00\x01") + 4]  # everything up to the SEI's start code
    bad_au = head + nal_unit(NAL_SUFFIX_SEI, decoded_picture_hash_rbsp(wrong))
    assert parse_md5_sei(bad_au) == wrong
    out = hm_decode(aus[0] + bad_au, W, H, bd)
    assert out.returncode != 0, out.log
    assert [ok for *_, ok in out.md5] == [True, False], out.log
    rx = ",".join(d.hex() for d in wrong)
    assert f"{digests[2].hex()},(***ERROR***)] [rxMD5:{rx}]" in out.log, out.log
    assert "signalled md5sum does not match" in out.log, out.log
