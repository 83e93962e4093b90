"""The layer order of docs/architecture.md as a contract: import-linter checks every import
(also those inside functions) against the contracts in pyproject.toml, and the shipped
codecs load without torch where they do not need it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports not installed (import-linter is a dev dependency: ./run installs it)")
    r = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(m for m in ('torch', 'codeclab.lab') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_hevc_and_its_quantizers_load_without_torch() -> None:
    """Importing our HEVC codec, building every quantizer and quantizing one block with each
    (the nrdoq FCN runs single blocks in numba) imports neither torch nor the trainers."""
    code = """
import numpy as np
import codeclab.codecs.hevc
from codeclab.codecs.base import get_codec
from codeclab.codecs.hevc.quantizer import EncoderQuantizer
get_codec("hevc")
c = np.random.default_rng(0).integers(-400, 400, (1, 8, 8)).astype(np.int32)
for name in ("sq", "rdoq", "nrdoq-ar", "nrdoq-fcn"):
    EncoderQuantizer(name, 32).quantize(c, 32, 3, 8, 0, 0, True)
"""
    assert _loaded_after(code) == set()


def test_cli_parser_loads_without_torch() -> None:
    assert _loaded_after("from codeclab.cli import build_parser\nbuild_parser()") == set()
