"""Shared fixtures: a small randomly initialised lic model saved like shipped weights."""

from __future__ import annotations

import pytest
import torch
from _lic_helpers import SMALL

from codeclab.codecs.lic.model import LicConfig, LicModel


@pytest.fixture(scope="session")
def small_weights(tmp_path_factory) -> str:
    torch.manual_seed(1)
    model = LicModel(LicConfig(**SMALL))
    path = tmp_path_factory.mktemp("licw") / "small.pt"
    state = {k: v.to(torch.float16) for k, v in model.state_dict().items()}
    torch.save({"model": state, "config": LicConfig(**SMALL).to_dict()}, path)
    return str(path)
