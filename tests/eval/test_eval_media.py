"""Real clips from the shared media folder, converted to JVET-named raw YUV, through the
whole run/report path; x265 against x264 where those codecs are registered."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from _eval_helpers import MEDIA

from codeclab.eval.evaluate import report_evaluation, run_evaluation

CLIPS = {"realshort.mp4": "Realshort", "balle1-vp9.avi": "Balle"}


def to_jvet_yuv(src: Path, folder: Path, name: str, frames: int) -> tuple[str, int, int]:
    """First ``frames`` 4:2:0 8-bit frames of ``src`` as ``Name_WxH_30.yuv`` (planes copied as decoded)."""
    av = pytest.importorskip("av")
    chunks = []
    with av.open(str(src)) as c:
        for f in c.decode(video=0):
            if f.format.name != "yuv420p":
                f = f.reformat(format="yuv420p")
            chunks += [np.from_dlpack(p).tobytes() for p in f.planes]
            w, h = f.width, f.height
            if len(chunks) == 3 * frames:
                break
    fname = f"{name}_{w}x{h}_30.yuv"
    (folder / fname).write_bytes(b"".join(chunks))
    return fname, w, h


Codec = tuple[str, str, str]  # label, codec name, TOML options


def _codecs() -> tuple[Codec, Codec]:
    """(anchor, test): x265 vs x264 when both are registered, else the test codec twice."""
    from codeclab.base.errors import UsageError
    from codeclab.codecs import get_codec

    try:
        get_codec("x265"), get_codec("x264")
    except (UsageError, ImportError):
        return ("fq", "fakeq", "{ offset = 0.5 }"), ("fq-dz", "fakeq", "{ offset = 0.3 }")
    return ("x265", "x265", '{ preset = "ultrafast", keyint = 1 }'), ("x264", "x264", '{ preset = "ultrafast", keyint = 1 }')


def test_real_clips_two_codecs_four_qps(tmp_path):
    if not all((MEDIA / "clips" / c).is_file() for c in CLIPS):
        pytest.skip(f"shared media not found at {MEDIA}")
    data = tmp_path / "seq"
    data.mkdir()
    cat = []
    for clip, name in CLIPS.items():
        fname, w, h = to_jvet_yuv(MEDIA / "clips" / clip, data, name, 2)
        cat.append(f'[[sequence]]\nname = "{name}"\nclass = "R"\nfile = "{fname}"\nwidth = {w}\nheight = {h}\n'
                   f"fps = 30\nframes = 2\n")
    (tmp_path / "cat.toml").write_text("\n".join(cat))
    anchor, test = _codecs()
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f"""
name = "media"
catalogue = "cat.toml"
anchor = "{anchor[0]}"
qps = [22, 27, 32, 37]
imports = ["_eval_fakecodec"]
[frames]
count = 2
[[codec]]
label = "{anchor[0]}"
name = "{anchor[1]}"
options = {anchor[2]}
[[codec]]
label = "{test[0]}"
name = "{test[1]}"
options = {test[2]}
""")
    db = tmp_path / "r.sqlite"
    with ThreadPoolExecutor(2) as ex:
        out = run_evaluation(cfg, data, db, executor=ex, progress=False)
    assert out.summary.failed == [], out.summary.failed
    assert out.summary.done == 2 * 2 * 4
    an, paths = report_evaluation(db, tmp_path / "rep")
    assert {p.name for p in (tmp_path / "rep" / "plots").iterdir()} == {"Realshort.png", "Balle.png"}
    assert (tmp_path / "rep" / "report.html").stat().st_size > 10_000
    for r in an.per_sequence:
        assert r.error is None and all(math.isfinite(v) for v in r.bd_rate["pchip"].values())
    for pts in an.points.values():  # rate falls and PSNR falls as QP rises, for a real codec too
        by_qp = sorted(pts, key=lambda p: p.point)
        assert [p.rate for p in by_qp] == sorted((p.rate for p in by_qp), reverse=True)
        assert [p.psnr_y for p in by_qp] == sorted((p.psnr_y for p in by_qp), reverse=True)
