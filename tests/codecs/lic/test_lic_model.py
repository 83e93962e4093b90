"""Model shapes, MSP step masks and the O(1) step count."""

from __future__ import annotations

import torch
from _lic_helpers import SMALL

from codeclab.codecs.lic.codec import load_model
from codeclab.codecs.lic.model import LicConfig, LicModel
from codeclab.codecs.lic.msp import PROFILES, step_masks


def test_forward_shapes():
    torch.manual_seed(0)
    m = LicModel(LicConfig(**SMALL))
    x = torch.rand(2, 3, 128, 192)
    out = m(x, torch.tensor([0, 2]))
    assert out["x_hat"].shape == x.shape
    assert out["lik_y"].shape == (2, SMALL["m"], 8, 12)
    assert out["lik_z"].shape == (2, SMALL["nz"], 2, 3)
    assert bool((out["lik_y"] > 0).all()) and bool((out["lik_y"] <= 1).all())


def test_step_masks_partition_the_latent():
    for prof in PROFILES.values():
        masks = step_masks(8, 12, 16, prof)
        assert masks.shape[0] == prof.steps
        assert bool((masks.sum(0) == 1).all())  # disjoint and covering
        # the first step is the coarsest grid only (stride 2**(levels-1))
        s = 1 << (prof.levels - 1)
        pos = masks[0].any(0).nonzero()
        assert bool((pos % s == 0).all())


def test_decoding_steps_do_not_depend_on_size(small_weights):
    lm = load_model(small_weights)
    a = step_masks(32, 8, 12, lm.model.msp.profile).shape[0]
    b = step_masks(32, 68, 120, lm.model.msp.profile).shape[0]  # 1080p latent
    assert a == b == lm.coder.num_steps == PROFILES["default"].steps
