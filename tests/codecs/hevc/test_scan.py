"""Scan orders against the literal pseudo-code of H.265 6.5.3-6.5.5 and 7.4.9.11."""

import pytest

from codeclab.codecs.hevc.scan import (
    SCAN_DIAG,
    SCAN_HOR,
    SCAN_VER,
    coeff_scan_4x4,
    full_scan,
    scan_idx_for,
    scan_order,
    subblock_scan,
)


def _spec_diag(blk):
    """6.5.3 as written: i, x, y, stopLoop."""
    out, i, x, y, stop = [], 0, 0, 0, False
    while not stop:
        while y >= 0:
            if x < blk and y < blk:
                out.append((x, y))
                i += 1
            y -= 1
            x += 1
        y, x = x, 0
        if i >= blk * blk:
            stop = True
    return out


def _spec_hor(blk):  # 6.5.4
    return [(x, y) for y in range(blk) for x in range(blk)]


def _spec_ver(blk):  # 6.5.5
    return [(x, y) for x in range(blk) for y in range(blk)]


@pytest.mark.parametrize("log2", [0, 1, 2, 3, 4, 5])
def test_scans_match_spec_pseudocode(log2):
    blk = 1 << log2
    assert scan_order(log2, SCAN_DIAG).tolist() == [list(p) for p in _spec_diag(blk)]
    assert scan_order(log2, SCAN_HOR).tolist() == [list(p) for p in _spec_hor(blk)]
    assert scan_order(log2, SCAN_VER).tolist() == [list(p) for p in _spec_ver(blk)]


def test_diag_4x4_published_order():
    # the familiar zig-up 4x4 order: raster indices 0 4 1 8 5 2 12 9 6 3 13 10 7 14 11 15
    raster = [y * 4 + x for x, y in coeff_scan_4x4(SCAN_DIAG)]
    assert raster == [0, 4, 1, 8, 5, 2, 12, 9, 6, 3, 13, 10, 7, 14, 11, 15]


def test_full_scan_is_subblock_composition_and_permutation():
    for log2 in (2, 3, 4, 5):
        for idx in (0, 1, 2):
            fs = full_scan(log2, idx)
            n = 1 << log2
            assert sorted((fs[:, 1] * n + fs[:, 0]).tolist()) == list(range(n * n))
            sb = subblock_scan(log2, idx)
            for i in range(0, n * n, 16):
                assert (fs[i] // 4).tolist() == sb[i // 16].tolist()
    assert not scan_order(3, 0).flags.writeable


def test_scan_idx_rule():
    assert scan_idx_for(10, 2, 0) == SCAN_VER  # horizontal prediction -> vertical scan
    assert scan_idx_for(26, 3, 0) == SCAN_HOR
    assert scan_idx_for(6, 2, 1) == SCAN_VER and scan_idx_for(14, 2, 0) == SCAN_VER
    assert scan_idx_for(5, 2, 0) == SCAN_DIAG and scan_idx_for(15, 2, 0) == SCAN_DIAG
    assert scan_idx_for(22, 2, 2) == SCAN_HOR and scan_idx_for(30, 2, 0) == SCAN_HOR
    assert scan_idx_for(31, 2, 0) == SCAN_DIAG
    assert scan_idx_for(26, 3, 1) == SCAN_DIAG  # 8x8 chroma in 4:2:0: diagonal
    assert scan_idx_for(26, 3, 1, chroma_format_idc=3) == SCAN_HOR
    assert scan_idx_for(26, 4, 0) == SCAN_DIAG and scan_idx_for(0, 2, 0) == SCAN_DIAG
