"""SATD against scipy's Hadamard matrix and HM's per-tile rounding."""

import numpy as np
import pytest
from scipy.linalg import hadamard

from codeclab.codecs.hevc.satd import satd, satd_batch


def _ref(a, b):
    d = a.astype(np.int64) - b.astype(np.int64)
    h, w = d.shape
    size = 8 if h % 8 == 0 and w % 8 == 0 else 4
    hm = hadamard(size)
    tot = 0
    for y in range(0, h, size):
        for x in range(0, w, size):
            s = int(np.abs(hm @ d[y:y + size, x:x + size] @ hm.T).sum())
            tot += (s + 2) >> 2 if size == 8 else (s + 1) >> 1
    return tot


@pytest.mark.parametrize("shape", [(4, 4), (8, 8), (16, 16), (32, 32), (4, 8), (8, 16)])
def test_satd_matches_matrix_form(shape):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    for bd in (8, 10):
        a = rng.integers(0, 1 << bd, shape).astype(np.uint16)
        b = rng.integers(0, 1 << bd, shape).astype(np.int32)
        assert satd(a, b) == _ref(a, b)
    assert satd(a, a) == 0


def test_satd_known_values_and_batch():
    a = np.zeros((4, 4), np.int32)
    b = np.zeros((4, 4), np.int32)
    b[0, 0] = 1  # impulse: all 16 Hadamard coefficients are +-1 -> (16 + 1) >> 1
    assert satd(a, b) == 8
    a8 = np.full((8, 8), 3, np.int32)  # DC 3 -> one coefficient 3*64 = 192 -> (192 + 2) >> 2
    assert satd(a8, np.zeros((8, 8), np.int32)) == 48
    rng = np.random.default_rng(0)
    preds = rng.integers(0, 256, (35, 16, 16)).astype(np.int32)
    orig = rng.integers(0, 256, (16, 16)).astype(np.int32)
    assert satd_batch(preds, orig).tolist() == [satd(orig, p) for p in preds]
    with pytest.raises(ValueError):
        satd(np.zeros((6, 6)), np.zeros((6, 6)))
