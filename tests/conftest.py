"""Shared test fixtures: synthetic frames and the optional real media folder.

Other test modules may append fixtures here; keep each one small and deterministic. Plain
helper functions live in ``_synth.py`` (import them from there, not from ``conftest``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # so that test folders can import _synth

from _synth import MEDIA, synth_frames  # noqa: E402

from codeclab.base.frame import Frame  # noqa: E402


@pytest.fixture()
def make_frames() -> Callable[..., list[Frame]]:
    """Factory of synthetic frames: ``make_frames("yuv420p10le", n=3, seed=1)``."""
    return synth_frames


@pytest.fixture()
def media() -> Path:
    """The shared real-media folder, or skip."""
    if not MEDIA.is_dir():
        pytest.skip(f"real media not available at {MEDIA}")
    return MEDIA
