"""``codeclab demo``: code the clip shipped in the package with each demo codec and measure it.

The clip (``codeclab/data/demo/``, provenance in its ``PROVENANCE.md``) is stored
losslessly (FFV1), so the metrics compare against a clean source. A codec joins the demo
by appending ``(name, options)`` to :data:`DEMO_CODECS`; codecs that are not installed or
not registered are skipped with a note.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from codeclab.codecs.base import available_codecs
from codeclab.pipeline.io.sources import FrameRange
from codeclab.pipeline.metrics import MetricsLog
from codeclab.pipeline.transcode import TranscodeResult, transcode

__all__ = ["DEMO_CODECS", "DEMO_FRAMES", "DEMO_CLIP", "demo_clip", "DemoRun", "run_demo"]

#: (codec, options) pairs the demo runs, in order, on the whole clip. Our own codecs append
#: themselves here.
DEMO_CODECS: list[tuple[str, dict[str, Any]]] = [
    ("x265", {"qp": 32, "keyint": 250}),  # one IDR, then P pictures (x265's default keyint)
    ("hevc", {"qp": 32}),  # our defaults: HM's low-delay P structure and tools, RDOQ, preset medium
    ("hevc", {"qp": 32, "preset": "fast", "quant": "sq"}),  # fewer candidates, no RDOQ: the fastest
    ("overfit", {"quality": 3, "preset": "fast"}),
    ("lic", {"quality": 4}),
]
#: codecs whose encoder is too slow for the whole clip in a demo: the first N frames only
DEMO_FRAMES: dict[str, int] = {"overfit": 1}

#: file name of the shipped clip inside ``codeclab/data/demo/``
DEMO_CLIP = "realshort-12f.mkv"


def demo_clip() -> Path:
    """Path of the clip shipped inside the package."""
    return Path(str(files("codeclab") / "data" / "demo" / DEMO_CLIP))


@dataclass(frozen=True)
class DemoRun:
    codec: str
    options: dict[str, Any]
    result: TranscodeResult | None  # None: codec not available
    csv: Path | None
    json: Path | None
    note: str = ""
    frames: int | None = None  # the first N frames only (None: the whole clip)


def _label(codec: str, options: dict[str, Any]) -> str:
    return codec + "".join(f"-{k}{v}" for k, v in options.items())


def run_demo(out_dir: str | os.PathLike[str], *, progress: bool = True,
             codecs: list[tuple[str, dict[str, Any]]] | None = None) -> list[DemoRun]:
    """Transcode the demo clip with every codec into ``out_dir`` (MP4/.clc + metrics CSV and JSON)."""
    from codeclab.base.errors import CodeclabError
    from codeclab.codecs.base import get_codec

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clip = demo_clip()
    runs: list[DemoRun] = []
    known = set(available_codecs())
    for codec, options in codecs if codecs is not None else DEMO_CODECS:
        if codec not in known:
            runs.append(DemoRun(codec, options, None, None, None, "not installed"))
            continue
        try:
            spec = get_codec(codec)
        except CodeclabError as e:
            runs.append(DemoRun(codec, options, None, None, None, str(e)))
            continue
        stem = out / f"demo-{_label(codec, options)}"
        target = stem.with_suffix(".mp4" if spec.stream_codec else ".clc")
        csv, js = stem.with_suffix(".csv"), stem.with_suffix(".json")
        n = DEMO_FRAMES.get(codec)
        r = transcode(clip, target, spec, dict(options), metrics_path=csv, progress=progress,
                      frames=FrameRange(0, n) if n else None)
        MetricsLog.read_csv(csv).write_json(js, r.format.fps)
        runs.append(DemoRun(codec, options, r, csv, js, frames=n))
    return runs
