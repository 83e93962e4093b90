"""RBSP bit writer for the header syntax of H.265 (7.2): u(n), ue(v), se(v), trailing bits.

Headers are a few hundred bits per picture, so a plain Python integer accumulator is fast
enough; slice data (CABAC) is written by :mod:`codeclab.bitstream.cabac` in numba.
"""

from __future__ import annotations

__all__ = ["BitWriter"]


class BitWriter:
    """Most-significant-bit-first writer of one RBSP (no emulation prevention here)."""

    def __init__(self) -> None:
        self._bytes = bytearray()
        self._acc = 0  # pending bits, fewer than 8
        self._n = 0

    @property
    def bit_pos(self) -> int:
        """Number of bits written so far."""
        return 8 * len(self._bytes) + self._n

    def u(self, n: int, value: int) -> None:
        """Fixed-length unsigned value u(n), n = 0..64."""
        value = int(value)
        if n < 0 or value < 0 or (n < 64 and value >> n):
            raise ValueError(f"u({n}) cannot hold {value}")
        acc = (self._acc << n) | value
        nb = self._n + n
        while nb >= 8:
            nb -= 8
            self._bytes.append((acc >> nb) & 0xFF)
        self._acc = acc & ((1 << nb) - 1)
        self._n = nb

    def flag(self, value: bool | int) -> None:
        self.u(1, 1 if value else 0)

    def ue(self, value: int) -> None:
        """Unsigned Exp-Golomb ue(v) (9.2): leadingZeroBits zeros, then value+1 in binary."""
        value = int(value)
        if value < 0:
            raise ValueError(f"ue(v) cannot hold {value}")
        v = value + 1
        n = v.bit_length()
        self.u(n - 1, 0)
        self.u(n, v)

    def se(self, value: int) -> None:
        """Signed Exp-Golomb se(v) (9.2.2): k > 0 -> 2k-1, k <= 0 -> -2k."""
        value = int(value)
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def trailing_bits(self) -> None:
        """rbsp_trailing_bits(): a stop bit 1, then zeros to the byte boundary."""
        self.u(1, 1)
        self.align_zero()

    def byte_alignment(self) -> None:
        """byte_alignment() of the slice header: alignment_bit_equal_to_one, then zeros."""
        self.trailing_bits()

    def align_zero(self) -> None:
        if self._n:
            self.u(8 - self._n, 0)

    def getvalue(self) -> bytes:
        """The bytes written; the writer must be byte aligned."""
        if self._n:
            raise ValueError(f"bit writer not byte aligned ({self._n} pending bits)")
        return bytes(self._bytes)
