"""BD-rate / BD-PSNR against published numbers, an independent package and exact identities."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.interpolate import PchipInterpolator

from codeclab.base.errors import UsageError
from codeclab.eval.bdrate import bd_psnr, bd_rate, bd_rate_components, pchip_integral

# JCTVC-E137 (the contribution that put PCHIP into the HEVC CTC Excel sheet): two curve pairs
# and the sheet's BD-rates, as carried in Netflix/vmaf python/test/bd_rate_calculator_test.py
# (BDrateCalculatorJCTVCTest, values there are fractions: -0.00465215420752807, -0.018779823450567612).
E137 = [
    (
        [108048.8736, 61279.976, 33905.6656, 18883.6928], [43.6471, 40.3953, 37.247, 34.2911],
        [108061.2784, 61299.9936, 33928.7472, 18910.912], [43.6768, 40.4232, 37.2761, 34.3147],
        -0.465215420752807,
    ),
    (
        [40433.8848, 7622.7456, 2394.488, 1017.6184], [37.5761, 35.3756, 33.8977, 32.0603],
        [40370.12, 7587.0024, 2390.0944, 1017.0984], [37.5982, 35.4025, 33.9194, 32.0822],
        -1.8779823450567612,
    ),
]

# Curve pairs shipped with the FAU-LMS `bjontegaard` package's README/example (libx265 presets).
FAU_1 = (
    [9487.76, 4593.60, 2486.44, 1358.24], [40.037, 38.615, 36.845, 34.851],
    [9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.651, 36.970, 34.987],
)
FAU_3 = (  # six points, not monotone in spacing
    [82472.76, 26875.24, 9487.76, 4593.6, 3600, 2900], [43.825, 41.404, 40.037, 38.615, 36.5, 35.1],
    [99896.96, 33952.04, 9787.8, 4469.0, 4040, 3300], [44.731, 41.875, 40.121, 38.651, 37, 36.5],
)
# "Sample 1" of the widespread VCEG-M33 reference scripts (Matlab bjontegaard.m, Python ports).
SAMPLE_1 = (
    [686.76, 309.58, 157.11, 85.95], [40.28, 37.18, 34.24, 31.42],
    [893.34, 407.8, 204.93, 112.75], [40.39, 37.21, 34.17, 31.24],
)
# VCEG-M33 cubic results for SAMPLE_1 and FAU_1 as evaluated by an unrelated project
# (a TypeScript port's test, numpy polyfit/polyint of ln-rate): 31.397374054908013, -4.420462706090111.
CUBIC_EXPECTED = [(SAMPLE_1, 31.397374054908013), (FAU_1, -4.420462706090111)]

TOL_PP = 0.01  # target agreement, percentage points


@pytest.mark.parametrize("ra, qa, rb, qb, expected", E137)
def test_pchip_matches_jctvc_e137_sheet(ra, qa, rb, qb, expected):
    got = bd_rate(ra, qa, rb, qb, method="pchip")
    assert abs(got - expected) < TOL_PP
    assert got == pytest.approx(expected, abs=1e-8)  # in fact identical to the sheet's digits


@pytest.mark.parametrize("curves, expected", CUBIC_EXPECTED)
def test_cubic_matches_vceg_m33_evaluations(curves, expected):
    assert bd_rate(*curves, method="cubic") == pytest.approx(expected, abs=1e-7)


def _bjontegaard():
    return pytest.importorskip("bjontegaard")


def _random_curves(rng: np.random.Generator, n: int):
    qa = np.sort(rng.uniform(30, 45, n)) + np.arange(n) * 0.3
    ra = 10 ** (0.12 * qa + rng.normal(0, 0.02, n))
    qb = np.sort(qa + rng.normal(0.2, 0.3, n))
    rb = ra * rng.uniform(0.8, 1.1, n)
    return ra, qa, rb, qb


def _sorted(r, q, key):
    """The package only reverses descending input; give it points ascending in its x."""
    order = np.argsort(key)
    return np.asarray(r, float)[order], np.asarray(q, float)[order]


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_matches_bjontegaard_package(method):
    bj = _bjontegaard()
    rng = np.random.default_rng(7)
    cases = [FAU_1, FAU_3, SAMPLE_1, *[E[:4] for E in E137]] + [_random_curves(rng, n) for n in (4, 4, 5, 6, 8)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package warns on small overlap
        for ra, qa, rb, qb in cases:
            args = (*_sorted(ra, qa, qa), *_sorted(rb, qb, qb))
            assert bd_rate(*args, method=method) == pytest.approx(bj.bd_rate(*args, method=method), abs=1e-6)
            args = (*_sorted(ra, qa, ra), *_sorted(rb, qb, rb))
            assert bd_psnr(*args, method=method) == pytest.approx(bj.bd_psnr(*args, method=method), abs=1e-8)


@given(st.lists(st.floats(-5, 5), min_size=3, max_size=8), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_pchip_integral_equals_scipy(ys, seed):
    """Our slopes/integration equal SciPy's PCHIP (which the JVET sheet matches), also for wiggly data."""
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.uniform(0.1, 3.0, len(ys)))
    y = np.asarray(ys)
    lo, hi = np.sort(rng.uniform(x[0], x[-1], 2))
    ref = PchipInterpolator(x, y).integrate(lo, hi)
    assert pchip_integral(x, y, lo, hi) == pytest.approx(ref, abs=1e-9 * (1 + abs(ref)))


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_exact_identities(method):
    ra, qa, _, _ = SAMPLE_1
    assert bd_rate(ra, qa, ra, qa, method=method) == pytest.approx(0.0, abs=1e-12)
    assert bd_rate(ra, qa, [r * 1.25 for r in ra], qa, method=method) == pytest.approx(25.0, abs=1e-9)
    assert bd_rate(ra, qa, [r * 0.8 for r in ra], qa, method=method) == pytest.approx(-20.0, abs=1e-9)
    assert bd_psnr(ra, qa, ra, [q + 0.5 for q in qa], method=method) == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_swap_inverts_ratio_and_order_is_irrelevant(method):
    ra, qa, rb, qb = FAU_1
    fwd = bd_rate(ra, qa, rb, qb, method=method)
    back = bd_rate(rb, qb, ra, qa, method=method)
    assert (1 + fwd / 100) * (1 + back / 100) == pytest.approx(1.0, abs=1e-12)
    assert bd_psnr(rb, qb, ra, qa, method=method) == pytest.approx(-bd_psnr(ra, qa, rb, qb, method=method))
    perm = [2, 0, 3, 1]
    shuffled = bd_rate([ra[i] for i in perm], [qa[i] for i in perm], rb[::-1], qb[::-1], method=method)
    assert shuffled == pytest.approx(fwd, abs=1e-12)


def test_two_points_pchip_is_linear():
    got = bd_rate([100, 1000], [30, 40], [90, 900], [31, 41])
    # log10-rate is a straight line per curve, so the mean difference over [31, 40] is exact from samples
    lo, hi = 31, 40
    mean = np.mean([np.log10(90) + (q - 31) * 0.1 - (2 + (q - 30) * 0.1) for q in np.linspace(lo, hi, 11)])
    assert got == pytest.approx((10**mean - 1) * 100, abs=1e-9)


def test_non_monotone_curve_is_still_computed():
    """A curve whose rate dips while PSNR rises is interpolated as given (documented)."""
    ra, qa = [100, 200, 180, 400, 800], [30, 32, 34, 36, 38]
    rb, qb = [90, 180, 190, 350, 700], [30.2, 32.1, 34.3, 36.2, 38.1]
    got = bd_rate(ra, qa, rb, qb)
    assert math.isfinite(got)
    bj = pytest.importorskip("bjontegaard")
    assert got == pytest.approx(bj.bd_rate(ra, qa, rb, qb, method="pchip"), abs=1e-6)


def test_components():
    ra, qa, rb, qb = FAU_1
    u_a, u_b = [q + 3 for q in qa], [q + 3.2 for q in qb]
    v_a, v_b = [q + 4 for q in qa], [q + 3.9 for q in qb]
    res = bd_rate_components(
        {"rate": ra, "psnr_y": qa, "psnr_u": u_a, "psnr_v": v_a},
        {"rate": rb, "psnr_y": qb, "psnr_u": u_b, "psnr_v": v_b},
    )
    assert set(res) == {"Y", "U", "V", "YUV"}
    assert res["Y"] == pytest.approx(bd_rate(ra, qa, rb, qb))
    assert res["U"] == pytest.approx(bd_rate(ra, u_a, rb, u_b))
    yuv_a = [(6 * y + u + v) / 8 for y, u, v in zip(qa, u_a, v_a)]
    yuv_b = [(6 * y + u + v) / 8 for y, u, v in zip(qb, u_b, v_b)]
    assert res["YUV"] == pytest.approx(bd_rate(ra, yuv_a, rb, yuv_b))
    mono = bd_rate_components({"rate": ra, "psnr_y": qa}, {"rate": rb, "psnr_y": qb}, method="cubic")
    assert mono == {"Y": pytest.approx(bd_rate(ra, qa, rb, qb, method="cubic")),
                    "YUV": pytest.approx(bd_rate(ra, qa, rb, qb, method="cubic"))}


@pytest.mark.parametrize(
    "args, kw, match",
    [
        ((SAMPLE_1[0][:3], SAMPLE_1[1][:3], SAMPLE_1[2], SAMPLE_1[3]), {"method": "cubic"}, "at least 4"),
        (([100], [30], [100, 200], [30, 35]), {}, "at least 2"),
        (([100, 200], [30, 35], [300, 600], [40, 45]), {}, "do not overlap"),
        (([100, 200, 300], [30, 30, 35], [100, 200, 300], [30, 32, 35]), {}, "same quality"),
        (([100, 0], [30, 35], [100, 200], [30, 35]), {}, "rate <= 0"),
        (([100, 200], [30, float("nan")], [100, 200], [30, 35]), {}, "non-finite"),
        (([100, 200], [30], [100, 200], [30, 35]), {}, "2 rates but 1"),
        ((SAMPLE_1), {"method": "akima"}, "unknown interpolation"),
    ],
)
def test_errors(args, kw, match):
    with pytest.raises(UsageError, match=match):
        bd_rate(*args, **kw)


def test_components_missing_key():
    with pytest.raises(UsageError, match="no 'rate'"):
        bd_rate_components({"psnr_y": [1, 2]}, {"rate": [1, 2], "psnr_y": [1, 2]})
