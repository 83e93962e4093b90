"""Transforms against H.265 8.6.4.2 written out per element, published matrix rows, HM shifts."""

import numpy as np
import pytest

from codeclab.codecs.hevc.transform import (
    DCT_MATRIX_32,
    forward_transform,
    forward_transform_skip,
    inverse_transform,
    inverse_transform_skip,
    transform_matrix,
)

# rows of transMatrix as printed in the standard (columns 0..15)
SPEC_ROWS = {
    1: [90, 90, 88, 85, 82, 78, 73, 67, 61, 54, 46, 38, 31, 22, 13, 4],
    2: [90, 87, 80, 70, 57, 43, 25, 9, -9, -25, -43, -57, -70, -80, -87, -90],
    3: [90, 82, 67, 46, 22, -4, -31, -54, -73, -85, -90, -88, -78, -61, -38, -13],
    4: [89, 75, 50, 18, -18, -50, -75, -89, -89, -75, -50, -18, 18, 50, 75, 89],
    8: [83, 36, -36, -83, -83, -36, 36, 83, 83, 36, -36, -83, -83, -36, 36, 83],
    16: [64, -64, -64, 64] * 4,
}
# full 32-wide rows of the same table (as reproduced in public HEVC encoders)
FULL_ROWS = {
    5: [88, 67, 31, -13, -54, -82, -90, -78, -46, -4, 38, 73, 90, 85, 61, 22,
        -22, -61, -85, -90, -73, -38, 4, 46, 78, 90, 82, 54, 13, -31, -67, -88],
    29: [13, -38, 61, -78, 88, -90, 85, -73, 54, -31, 4, 22, -46, 67, -82, 90,
         -90, 82, -67, 46, -22, -4, 31, -54, 73, -85, 90, -88, 78, -61, 38, -13],
}


def test_matrix_rows_and_structure():
    for k, row in SPEC_ROWS.items():
        assert DCT_MATRIX_32[k, :16].tolist() == row
    for k, row in FULL_ROWS.items():
        assert DCT_MATRIX_32[k].tolist() == row
    m = DCT_MATRIX_32.astype(np.int64)
    # even rows symmetric, odd rows antisymmetric
    assert np.array_equal(m[0::2, :16], m[0::2, 31:15:-1])
    assert np.array_equal(m[1::2, :16], -m[1::2, 31:15:-1])
    # close to 64*sqrt(2)*cos((2n+1)k pi / 64) and nearly orthogonal
    k, n = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    ideal = 64 * np.sqrt(2) * np.cos((2 * n + 1) * k * np.pi / 64)
    ideal[0] = 64
    assert np.abs(m - ideal).max() < 1.5
    g = m @ m.T
    assert np.abs(np.diag(g) - 64 * 64 * 32).max() < 0.01 * 64 * 64 * 32
    assert np.abs(g - np.diag(np.diag(g))).max() < 0.005 * 64 * 64 * 32
    assert transform_matrix(3)[1].tolist() == [89, 75, 50, 18, -18, -50, -75, -89]
    assert transform_matrix(2, dst=True)[0].tolist() == [29, 55, 74, 84]


def _spec_inverse(d, log2, dst, bd):
    """8.6.4.2 + 8.6.2 with the spec's d[x][y] indexing, plain Python ints."""
    n = 1 << log2
    t = transform_matrix(log2, dst).tolist()  # t[j][i]: basis j at sample i

    def one_d(xs):
        return [sum(t[j][i] * xs[j] for j in range(n)) for i in range(n)]

    dd = [[int(d[y, x]) for y in range(n)] for x in range(n)]  # dd[x][y]
    e = [one_d(dd[x]) for x in range(n)]  # columns
    g = [[min(max((e[x][y] + 64) >> 7, -32768), 32767) for y in range(n)] for x in range(n)]
    r = [[0] * n for _ in range(n)]
    for y in range(n):
        row = one_d([g[x][y] for x in range(n)])
        for x in range(n):
            r[x][y] = row[x]
    bd_shift = 20 - bd
    return np.array([[(r[x][y] + (1 << (bd_shift - 1))) >> bd_shift for x in range(n)]
                     for y in range(n)])


@pytest.mark.parametrize("log2,dst", [(2, True), (2, False), (3, False), (4, False), (5, False)])
@pytest.mark.parametrize("bd", [8, 10])
def test_inverse_matches_spec(log2, dst, bd):
    rng = np.random.default_rng(log2 + bd)
    n = 1 << log2
    for trial in range(4):
        d = rng.integers(-32768, 32768, (n, n)) if trial == 0 else \
            rng.integers(-300, 300, (n, n)) * (rng.random((n, n)) < 0.3)
        if trial == 3:  # low-frequency block: the kernel skips all-zero columns
            d[:, 2:] = 0
        assert np.array_equal(inverse_transform(d, log2, dst, bd), _spec_inverse(d, log2, dst, bd))


@pytest.mark.parametrize("log2,dst", [(2, True), (2, False), (3, False), (4, False), (5, False)])
def test_forward_hm_shifts_and_roundtrip(log2, dst):
    rng = np.random.default_rng(7)
    n = 1 << log2
    for bd in (8, 10):
        x = rng.integers(-(1 << bd) + 1, 1 << bd, (4, n, n))
        c = forward_transform(x, log2, dst, bd)
        m = transform_matrix(log2, dst).astype(np.int64)
        s1, s2 = log2 + bd - 9, log2 + 6
        t = (x @ m.T + (1 << s1 >> 1)) >> s1
        assert np.array_equal(c, (m @ t + (1 << (s2 - 1))) >> s2)
        back = inverse_transform(c, log2, dst, bd)
        # coefficients use the same 16-bit range at any bit depth (error scales with
        # 2^(bd-8)); the integer bases are not exactly orthonormal (grows with amplitude)
        err, sc = np.abs(back - x), 1 << (bd - 8)
        # (rows have norms 131072 +- 0.2 %, cross products up to 0.3 %)
        assert err.max() <= sc * 4 + 0.02 * np.abs(x).max()
        assert err.mean() < sc * 0.6 + 0.004 * np.abs(x).mean()
        assert np.array_equal(inverse_transform(c[1], log2, dst, bd), back[1])


def test_dc_only_block():
    # flat residual 10 -> DC coefficient, inverse gives the flat block back
    for log2 in (2, 3, 4, 5):
        n = 1 << log2
        c = forward_transform(np.full((n, n), 10), log2, False, 8)
        assert np.count_nonzero(c) == 1
        assert np.array_equal(inverse_transform(c, log2, False, 8), np.full((n, n), 10))


def test_transform_skip():
    rng = np.random.default_rng(3)
    for bd in (8, 10):
        x = rng.integers(-255, 256, (4, 4))
        c = forward_transform_skip(x, 2, bd)
        assert np.array_equal(c, x * 2 ** (15 - bd - 2))
        assert np.array_equal(inverse_transform_skip(c, 2, bd), x)
        d = rng.integers(-5000, 5000, (4, 4))
        bd_shift = 20 - bd
        ref = ((d * 2 ** 7) + (1 << (bd_shift - 1))) >> bd_shift  # tsShift = 5 + log2(4)
        assert np.array_equal(inverse_transform_skip(d, 2, bd), ref)
