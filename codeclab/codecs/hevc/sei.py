"""Decoded picture hash SEI (H.265 7.3.5 sei_message, Annex D decoded_picture_hash, MD5).

Why: a conforming decoder that reads this message (HM's TAppDecoder always; FFmpeg with
``err_detect=crccheck``) hashes every picture it decodes and compares, so a stream of ours
checks itself against an independent decoder without a reconstruction file beside it. The
hash is the MD5 of each colour component's decoded sample array at the *coded* size
(pic_width_in_luma_samples x pic_height_in_luma_samples, before the conformance window
crops it), row by row, one byte per sample at bit depth 8, else two bytes little-endian.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from codeclab.bitstream.nal import nal_unit

__all__ = ["NAL_SUFFIX_SEI", "SEI_DECODED_PICTURE_HASH", "HASH_MD5", "picture_md5", "sei_message",
           "decoded_picture_hash_rbsp", "md5_sei_nal"]

NAL_SUFFIX_SEI = 40
SEI_DECODED_PICTURE_HASH = 132
HASH_MD5 = 0


def picture_md5(planes: Sequence[np.ndarray], bit_depth: int) -> list[bytes]:
    """MD5 digest (16 bytes) of each component array, as the decoded picture hash defines
    pictureData: the whole array row by row, samples as uint8 (bit depth 8) or uint16 LE."""
    dt = np.dtype(np.uint8) if bit_depth <= 8 else np.dtype("<u2")
    return [hashlib.md5(np.ascontiguousarray(pl, dtype=dt).tobytes()).digest() for pl in planes]


def _ff_coded(value: int) -> bytes:
    """payloadType / payloadSize coding of 7.3.5: 0xFF per 255, then the remainder."""
    return b"\xff" * (value // 255) + bytes((value % 255,))


def sei_message(payload_type: int, payload: bytes) -> bytes:
    """One sei_message() of a byte-aligned payload (no payload extension)."""
    return _ff_coded(payload_type) + _ff_coded(len(payload)) + payload


def decoded_picture_hash_rbsp(digests: Sequence[bytes]) -> bytes:
    """sei_rbsp() with one decoded_picture_hash message (hash_type 0, MD5 per component)
    and rbsp_trailing_bits."""
    if any(len(d) != 16 for d in digests):
        raise ValueError("MD5 digests are 16 bytes")
    payload = bytes((HASH_MD5,)) + b"".join(digests)
    return sei_message(SEI_DECODED_PICTURE_HASH, payload) + b"\x80"


def md5_sei_nal(planes: Sequence[np.ndarray], bit_depth: int) -> bytes:
    """SUFFIX_SEI NAL unit (nuh_temporal_id_plus1 = 1, no start code) carrying the MD5
    decoded picture hash of ``planes`` (the decoder's output arrays at the coded size)."""
    return nal_unit(NAL_SUFFIX_SEI, decoded_picture_hash_rbsp(picture_md5(planes, bit_depth)))
