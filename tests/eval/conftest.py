"""Fixtures for the eval tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # helpers and the fake codec plugin are imported by name, also by workers
    sys.path.insert(0, str(HERE))

from _eval_helpers import CATALOGUE, experiment_toml, write_yuv  # noqa: E402


@pytest.fixture()
def tiny(tmp_path: Path) -> dict[str, Path]:
    """A data folder with two JVET-named sequences (one 10-bit, in a class sub-folder),
    a catalogue listing a third one that is missing, and an experiment config."""
    data = tmp_path / "seq"
    data.mkdir()
    write_yuv(data / "Ripple_64x64_30.yuv", 64, 64, 3, 8, seed=1)
    (data / "T2").mkdir()
    write_yuv(data / "T2" / "Wave10_64x48_25fps_10bit_420.yuv", 64, 48, 3, 10, seed=2)
    cat = tmp_path / "cat.toml"
    cat.write_text(CATALOGUE)
    cfg = tmp_path / "exp.toml"
    cfg.write_text(experiment_toml(cat))
    return {"data": data, "catalogue": cat, "config": cfg, "tmp": tmp_path}
