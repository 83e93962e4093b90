"""Coefficient scan orders of HEVC (H.265 6.5.3-6.5.5) and the scanIdx rule (7.4.9.11).

residual_coding walks a TB as 4x4 sub-blocks: ``subblock_scan(log2, idx)`` orders the
sub-blocks (ScanOrder[log2-2][scanIdx]) and ``coeff_scan_4x4(idx)`` orders the 16 positions
inside one (ScanOrder[2][scanIdx]). Tables are built once and cached (read-only arrays).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

__all__ = [
    "SCAN_DIAG",
    "SCAN_HOR",
    "SCAN_VER",
    "scan_order",
    "subblock_scan",
    "coeff_scan_4x4",
    "full_scan",
    "scan_tables",
    "scan_idx_for",
]

SCAN_DIAG, SCAN_HOR, SCAN_VER = 0, 1, 2


def _diag(blk: int) -> list[tuple[int, int]]:
    """6.5.3 up-right diagonal: anti-diagonals from bottom-left to top-right."""
    out: list[tuple[int, int]] = []
    for s in range(2 * blk - 1):
        for y in range(min(s, blk - 1), -1, -1):
            x = s - y
            if x < blk:
                out.append((x, y))
    return out


@lru_cache(maxsize=None)
def scan_order(log2_size: int, scan_idx: int) -> np.ndarray:
    """ScanOrder[log2_size][scan_idx]: (n*n, 2) int array of [x, y] (x = column), cached."""
    if not 0 <= log2_size <= 5 or scan_idx not in (SCAN_DIAG, SCAN_HOR, SCAN_VER):
        raise ValueError(f"scan_order: bad log2_size={log2_size} or scan_idx={scan_idx}")
    n = 1 << log2_size
    if scan_idx == SCAN_DIAG:
        pos = _diag(n)
    elif scan_idx == SCAN_HOR:
        pos = [(x, y) for y in range(n) for x in range(n)]
    else:
        pos = [(x, y) for x in range(n) for y in range(n)]
    arr = np.array(pos, dtype=np.int32).reshape(n * n, 2)
    arr.setflags(write=False)
    return arr


def subblock_scan(log2_size: int, scan_idx: int) -> np.ndarray:
    """Order of the 4x4 sub-blocks of a 2^log2_size TB: (k, 2) [xS, yS] in sub-block units."""
    return scan_order(log2_size - 2, scan_idx)


def coeff_scan_4x4(scan_idx: int) -> np.ndarray:
    """Order of the 16 positions inside a 4x4 sub-block: (16, 2) [x, y]."""
    return scan_order(2, scan_idx)


@lru_cache(maxsize=None)
def full_scan(log2_size: int, scan_idx: int) -> np.ndarray:
    """Whole-TB coefficient order as residual_coding visits it forwards (sub-block by
    sub-block): (n*n, 2) [x, y]; position i of the scan is n = i % 16 of sub-block i // 16.
    Handy for vectorised last-position search: ``flat = y * n + x``."""
    sb = subblock_scan(log2_size, scan_idx)
    c4 = coeff_scan_4x4(scan_idx)
    arr = (sb[:, None, :] * 4 + c4[None, :, :]).reshape(-1, 2).astype(np.int32)
    arr.setflags(write=False)
    return arr


@lru_cache(maxsize=None)
def scan_tables(log2_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The scans as raster indices, for kernels that walk a flat (n*n,) block: (3, n*n) raster
    index (y * n + x) per scan position and (3, ncg) raster index of the 4x4 group per group
    scan position (yS * n/4 + xS), for scanIdx 0..2; read-only, cached. Position i of a scan
    is position i % 16 of group i // 16, as in :func:`full_scan`."""
    n = 1 << log2_size
    scans = np.empty((3, n * n), dtype=np.int64)
    cgs = np.empty((3, max(1, (n * n) >> 4)), dtype=np.int64)
    for s in range(3):
        fs = full_scan(log2_size, s)
        scans[s] = fs[:, 1].astype(np.int64) * n + fs[:, 0]
        if log2_size == 2:
            cgs[s] = 0
        else:
            sb = subblock_scan(log2_size, s)
            cgs[s] = sb[:, 1].astype(np.int64) * (n >> 2) + sb[:, 0]
    scans.setflags(write=False)
    cgs.setflags(write=False)
    return scans, cgs


@njit(cache=True)
def scan_idx_for(pred_mode_intra: int, log2_trafo_size: int, c_idx: int,
                 chroma_format_idc: int = 1) -> int:
    """scanIdx of 7.4.9.11 for an intra TB (numba: the search and the slice writer use it).

    ``log2_trafo_size`` is the size of the TB being coded (for 4:2:0 chroma: the chroma
    TB's own size, as residual_coding receives it); ``pred_mode_intra`` is IntraPredModeY
    for luma and IntraPredModeC for chroma. Mode-dependent scans exist only for 4x4 TBs and
    8x8 luma (8x8 chroma too in 4:4:4): modes 6..14 -> vertical, 22..30 -> horizontal.
    """
    if log2_trafo_size == 2 or (log2_trafo_size == 3 and (c_idx == 0 or chroma_format_idc == 3)):
        if 6 <= pred_mode_intra <= 14:
            return SCAN_VER
        if 22 <= pred_mode_intra <= 30:
            return SCAN_HOR
    return SCAN_DIAG
