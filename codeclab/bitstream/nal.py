"""NAL units of H.265 (7.3.1): header, emulation prevention, Annex-B byte stream framing."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "NAL_TRAIL_R",
    "NAL_RASL_R",
    "NAL_IDR_W_RADL",
    "NAL_IDR_N_LP",
    "NAL_CRA",
    "NAL_VPS",
    "NAL_SPS",
    "NAL_PPS",
    "nal_header",
    "escape_rbsp",
    "unescape_rbsp",
    "nal_unit",
    "annexb",
]

NAL_TRAIL_R = 1
NAL_RASL_R = 9
NAL_IDR_W_RADL = 19
NAL_IDR_N_LP = 20
NAL_CRA = 21
NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34


def nal_header(nal_type: int, layer_id: int = 0, temporal_id: int = 0) -> bytes:
    """forbidden_zero_bit, nal_unit_type u(6), nuh_layer_id u(6), nuh_temporal_id_plus1 u(3)."""
    if not 0 <= nal_type < 64 or not 0 <= layer_id < 64 or not 0 <= temporal_id < 7:
        raise ValueError(f"bad NAL header fields {nal_type}, {layer_id}, {temporal_id}")
    v = (nal_type << 9) | (layer_id << 3) | (temporal_id + 1)
    return bytes(((v >> 8) & 0xFF, v & 0xFF))


@njit(cache=True)
def _escape(src, dst):  # pragma: no cover - numba
    zeros = 0
    j = 0
    for i in range(src.shape[0]):
        b = src[i]
        if zeros >= 2 and b <= 3:
            dst[j] = 3
            j += 1
            zeros = 0
        dst[j] = b
        j += 1
        zeros = zeros + 1 if b == 0 else 0
    return j


def escape_rbsp(rbsp: bytes) -> bytes:
    """Insert emulation_prevention_three_byte (7.4.2): 00 00 0x (x <= 3) -> 00 00 03 0x, and a
    trailing 00 00 gets a final 03 (a NAL unit must not end with a zero byte)."""
    src = np.frombuffer(rbsp, dtype=np.uint8)
    dst = np.empty(src.shape[0] + src.shape[0] // 2 + 2, dtype=np.uint8)
    n = _escape(src, dst)
    out = dst[:n].tobytes()
    if out.endswith(b"\x00"):
        out += b"\x03"
    return out


def unescape_rbsp(payload: bytes) -> bytes:
    """Remove emulation prevention bytes (for tests and parsing our own streams)."""
    out = bytearray()
    zeros = 0
    for b in payload:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def nal_unit(nal_type: int, rbsp: bytes) -> bytes:
    """One NAL unit (header + escaped payload), without start code."""
    return nal_header(nal_type) + escape_rbsp(rbsp)


def annexb(nals: list[bytes]) -> bytes:
    """Annex-B byte stream of one access unit: every NAL gets a 4-byte start code
    (zero_byte + start_code_prefix_one_3bytes); B.2 requires the zero_byte for parameter
    sets and the first NAL of an access unit, and allows it everywhere."""
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals)
