"""Catalogue, experiment configs, job planning and the ``bdrate`` command."""

from __future__ import annotations

import csv
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import pytest
from _eval_helpers import REPO, write_yuv

from codeclab.base.errors import UsageError
from codeclab.eval.catalogue import load_catalogue
from codeclab.eval.config import FrameSelection, load_experiment, parse_experiment
from codeclab.eval.evaluate import report_evaluation, run_evaluation
from codeclab.eval.jobs import file_identity, plan_jobs

CONFIGS = REPO / "configs"

# (class, width, height, fps, bit depth, frames) of the JVET SDR CTC, JVET-T2010 table 1
CTC = {
    "Tango2": ("A1", 3840, 2160, 60, 10, 294), "FoodMarket4": ("A1", 3840, 2160, 60, 10, 300),
    "Campfire": ("A1", 3840, 2160, 30, 10, 300), "CatRobot": ("A2", 3840, 2160, 60, 10, 300),
    "DaylightRoad2": ("A2", 3840, 2160, 60, 10, 300), "ParkRunning3": ("A2", 3840, 2160, 50, 10, 300),
    "MarketPlace": ("B", 1920, 1080, 60, 10, 600), "RitualDance": ("B", 1920, 1080, 60, 10, 600),
    "Cactus": ("B", 1920, 1080, 50, 8, 500), "BasketballDrive": ("B", 1920, 1080, 50, 8, 500),
    "BQTerrace": ("B", 1920, 1080, 60, 8, 600), "BasketballDrill": ("C", 832, 480, 50, 8, 500),
    "BQMall": ("C", 832, 480, 60, 8, 600), "PartyScene": ("C", 832, 480, 50, 8, 500),
    "RaceHorsesC": ("C", 832, 480, 30, 8, 300), "BasketballPass": ("D", 416, 240, 50, 8, 500),
    "BQSquare": ("D", 416, 240, 60, 8, 600), "BlowingBubbles": ("D", 416, 240, 50, 8, 500),
    "RaceHorses": ("D", 416, 240, 30, 8, 300), "FourPeople": ("E", 1280, 720, 60, 8, 600),
    "Johnny": ("E", 1280, 720, 60, 8, 600), "KristenAndSara": ("E", 1280, 720, 60, 8, 600),
    "BasketballDrillText": ("F", 832, 480, 50, 8, 500), "ArenaOfValor": ("F", 1920, 1080, 60, 8, 600),
    "SlideEditing": ("F", 1280, 720, 30, 8, 300), "SlideShow": ("F", 1280, 720, 20, 8, 500),
}


def test_jvet_catalogue_matches_the_ctc_table():
    cat = load_catalogue(CONFIGS / "jvet_ctc.toml")
    assert cat.classes == ("A1", "A2", "B", "C", "D", "E", "F")
    got = {s.name: (s.cls, s.width, s.height, s.fps, s.bit_depth, s.frames) for s in cat.sequences}
    assert got == {k: (c, w, h, Fraction(f), d, n) for k, (c, w, h, f, d, n) in CTC.items()}
    for s in cat.sequences:
        assert s.chroma == "420" and s.file.endswith(".yuv")
        assert f"_{s.width}x{s.height}_" in s.file  # JVET naming carries the size
    assert [s.name for s in cat.select(["D"])] == ["BasketballPass", "BQSquare", "BlowingBubbles", "RaceHorses"]
    with pytest.raises(UsageError, match="no class 'Z'"):
        cat.select(["Z"])


def test_shipped_configs_load():
    for name in ("ai_ctc_x265.toml", "ai_ctc_hevc.toml"):
        exp = load_experiment(CONFIGS / name)
        assert exp.catalogue is not None and exp.catalogue.is_file()
        assert exp.anchor in [c.label for c in exp.codecs]
    clips = load_experiment(CONFIGS / "example_clips.toml")
    assert clips.catalogue is None and clips.sets[0]["glob"] == "*"
    x265 = load_experiment(CONFIGS / "ai_ctc_x265.toml")
    assert x265.frames == FrameSelection(0, None, 8)
    assert all(c.points == (22, 27, 32, 37) for c in x265.codecs)
    lic = load_experiment(CONFIGS / "ai_ctc_hevc.toml").codec("lic")
    assert lic.point_option == "quality"
    ra = load_experiment(CONFIGS / "ra_clips_hevc.toml")
    assert ra.frames == FrameSelection(0, 33, 1) and ra.anchor == "x265-medium-b"
    assert {c.options.get("gop") for c in ra.codecs} == {None, "ldp", "ldb", "ra"}
    assert ra.sets[0]["to_pix_fmt"] == "yuv420p"


def test_frame_selection_every_8th_frame_like_the_ai_ctc():
    assert FrameSelection(0, None, 8).coded_count(294) == 37  # frames 0, 8, ..., 288
    assert FrameSelection(0, None, 8).coded_count(300) == 38
    assert FrameSelection(0, 4, 8).coded_count(300) == 4
    assert FrameSelection(5, None, 1).coded_count(3) == 0
    assert FrameSelection(0, 2, 1).coded_count(None) == 2


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"codec": []}, "no \\[\\[codec\\]\\]"),
        ({"codec": [{"name": "x"}], "anchor": "y"}, "anchor 'y' is not a codec label"),
        ({"codec": [{"name": "x"}, {"name": "x"}]}, "labels must be unique"),
        ({"codec": [{"name": "x", "options": {"qp": 3}}]}, "set per point"),
        ({"codec": [{"name": "x"}], "qps": [22, 22]}, "repeated points"),
        ({"codec": [{"name": "x"}], "frames": {"step": 0}}, "step >= 1"),
        ({"codec": [{"name": "x"}], "typo": 1}, "unknown key"),
        ({"codec": [{"name": "x"}], "bd_method": "akima"}, "bd_method"),
    ],
)
def test_bad_configs_are_usage_errors(bad, message):
    data = {"catalogue": "c.toml", **bad}
    with pytest.raises(UsageError, match=message):
        parse_experiment(data, "exp.toml")


def test_plan_keys_are_stable_and_missing_files_are_reported(tiny):
    exp = load_experiment(tiny["config"])
    p1, p2 = plan_jobs(exp, tiny["data"]), plan_jobs(exp, tiny["data"])
    assert [j.key for j in p1.jobs] == [j.key for j in p2.jobs]
    assert len({j.key for j in p1.jobs}) == len(p1.jobs) == 16
    assert [s.name for s in p1.sequences] == ["Ripple", "Wave10"]
    assert p1.missing == (f"Absent (class T2): Absent_64x64_30.yuv not found under {tiny['data']}",)
    wave = next(j for j in p1.jobs if j.sequence == "Wave10")
    assert (wave.size, wave.pix_fmt, wave.fps, wave.count, wave.step) == ((64, 48), "yuv420p10le", "25", 2, 1)
    # a different file (same name, other content) gives new keys
    write_yuv(tiny["data"] / "Ripple_64x64_30.yuv", 64, 64, 3, 8, seed=99)
    p3 = plan_jobs(exp, tiny["data"])
    changed = {j.key for j in p3.jobs} - {j.key for j in p1.jobs}
    assert len(changed) == 8 and all(j.sequence == "Ripple" for j in p3.jobs if j.key in changed)


def test_file_identity_sees_both_ends_but_not_mtime(tmp_path):
    p = tmp_path / "a.yuv"
    p.write_bytes(bytes(3 << 20))
    a = file_identity(p)
    data = bytearray(p.read_bytes())
    data[-1] = 1
    p.write_bytes(bytes(data))
    b = file_identity(p)
    assert a != b
    q = tmp_path / "copy" / "a.yuv"
    q.parent.mkdir()
    q.write_bytes(bytes(data))
    assert file_identity(q) == b


def test_user_set_with_raw_overrides(tiny, tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    write_yuv(own / "clip_a.yuv", 32, 32, 2, 8, seed=3)
    write_yuv(own / "clip_b.yuv", 32, 32, 2, 8, seed=4)
    cfg = tmp_path / "set.toml"
    cfg.write_text("""
name = "own"
qps = [22, 37]
imports = ["_eval_fakecodec"]
[[set]]
name = "mine"
glob = "*.yuv"
size = "32x32"
fps = 24
pix_fmt = "yuv420p"
[[set]]
name = "nothing"
glob = "*.mp4"
[[codec]]
label = "a"
name = "fakeq"
[[codec]]
label = "b"
name = "fakeq"
options = { offset = 0.2 }
""")
    plan = plan_jobs(load_experiment(cfg), own)
    assert [s.name for s in plan.sequences] == ["mine/clip_a", "mine/clip_b"]
    assert all(s.cls == "mine" and s.size == (32, 32) and s.fps == 24 for s in plan.sequences)
    assert len(plan.jobs) == 2 * 2 * 2 and any("nothing" in m for m in plan.missing)


def test_bdrate_command_reproduces_the_report(tiny, tmp_path):
    db = tmp_path / "r.sqlite"
    with ThreadPoolExecutor(2) as ex:
        run_evaluation(tiny["config"], tiny["data"], db, executor=ex, progress=False)
    report_evaluation(db, tmp_path / "rep", plots=False)
    rd = tmp_path / "rep" / "rd"
    res = subprocess.run(
        [sys.executable, "-m", "codeclab.cli", "bdrate", str(rd / "fq-round.csv"), str(rd / "fq-deadzone.csv")],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 0, res.stderr
    got = {(r["sequence"], r["method"]): r for r in csv.DictReader(res.stdout.splitlines())}
    with open(tmp_path / "rep" / "bdrate_sequences.csv", newline="") as f:
        want = list(csv.DictReader(f))
    assert len(got) == len(want) == 4
    for w in want:
        g = got[(w["sequence"], w["method"])]
        for c in ("y", "u", "v", "yuv"):
            assert float(g[f"bd_rate_{c}"]) == float(w[f"bd_rate_{c}"])
        assert float(g["bd_psnr_y"]) == float(w["bd_psnr_y"])


def test_bdrate_command_minimal_csv_and_errors(tmp_path):
    a, t = tmp_path / "a.csv", tmp_path / "t.csv"
    a.write_text("# anchor\nqp,rate,psnr\n22,1000,40\n27,600,37\n32,350,34\n37,200,31\n")
    t.write_text("qp,rate,psnr\n22,900,40\n27,540,37\n32,315,34\n37,180,31\n")
    cmd = [sys.executable, "-m", "codeclab.cli", "bdrate", str(a), str(t), "--method", "pchip"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    row = list(csv.DictReader(res.stdout.splitlines()))[0]
    assert float(row["bd_rate_y"]) == pytest.approx(-10.0)  # every rate 10% lower at equal PSNR
    t.write_text("qp,bitrate\n22,1\n")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and res.stderr.startswith("codeclab: ") and "t.csv" in res.stderr
    assert "Traceback" not in res.stderr


def test_user_set_of_jvet_named_raw_files_needs_no_overrides(tmp_path):
    pytest.importorskip("codeclab.pipeline.io.jvet_names")
    own = tmp_path / "own"
    own.mkdir()
    write_yuv(own / "Alpha_64x32_50.yuv", 64, 32, 2, 8, seed=5)
    write_yuv(own / "Beta_32x32_60fps_10bit_420.yuv", 32, 32, 2, 10, seed=6)
    (own / "noname.yuv").write_bytes(bytes(64))
    cfg = tmp_path / "set.toml"
    cfg.write_text('imports = ["_eval_fakecodec"]\n[[set]]\nname = "jv"\nglob = "*.yuv"\n'
                   '[[codec]]\nlabel = "a"\nname = "fakeq"\n')
    plan = plan_jobs(load_experiment(cfg), own)
    got = {s.name: (s.size, s.fps, s.bit_depth, s.pix_fmt) for s in plan.sequences}
    assert got == {"jv/Alpha_64x32_50": ((64, 32), 50, 8, "yuv420p"),
                   "jv/Beta_32x32_60fps_10bit_420": ((32, 32), 60, 10, "yuv420p10le")}
    assert len(plan.missing) == 1 and "noname.yuv" in plan.missing[0]


def test_unimportable_plugin_is_one_usage_error_before_any_job(tiny, tmp_path):
    cfg = tmp_path / "typo.toml"
    cfg.write_text(tiny["config"].read_text().replace('imports = ["_eval_fakecodec"]', 'imports = ["_eval_fakecodek"]'))
    with pytest.raises(UsageError, match="cannot import '_eval_fakecodek'"):
        run_evaluation(cfg, tiny["data"], tmp_path / "r.sqlite", progress=False)
    assert not (tmp_path / "r.sqlite").exists()


def test_no_sequence_at_all_is_an_input_error(tmp_path):
    from codeclab.base.errors import InputError

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no sequence found under .*Tango2.*\(26 in all\)"):
        run_evaluation(CONFIGS / "ai_ctc_x265.toml", tmp_path / "empty", tmp_path / "r.sqlite", progress=False)


def test_set_to_pix_fmt_converts_on_reading(tmp_path):
    """``to_pix_fmt`` in a set converts its files when the job reads them, so a 4:4:4
    clip can be coded by a 4:2:0-only codec (our hevc); the conversion is part of the job's
    identity (converted and unconverted results never share a key)."""
    import av

    from codeclab.eval.worker import run_job

    own = tmp_path / "own"
    own.mkdir()
    rng = np.random.default_rng(0)
    with av.open(str(own / "c444.mkv"), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv444p"
        for _ in range(2):
            img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv444p")):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    plans = {}
    for conv in ("", 'to_pix_fmt = "yuv420p"'):
        cfg = tmp_path / "c.toml"
        cfg.write_text(f"""
name = "conv"
qps = [37]
[[set]]
name = "mine"
glob = "*.mkv"
{conv}
[[codec]]
label = "hevc"
name = "hevc"
options = {{ preset = "fast" }}
""")
        plans[conv] = plan_jobs(load_experiment(cfg), own)
    raw, conv = plans[""].jobs[0], plans['to_pix_fmt = "yuv420p"'].jobs[0]
    assert raw.key != conv.key and conv.to_pix_fmt == "yuv420p"
    failed = run_job(raw)
    assert not failed.ok and "4:2:0" in failed.error
    done = run_job(conv)
    assert done.ok and len(done.frames) == 2 and done.summary["psnr_y"] > 10
    bad = tmp_path / "bad.toml"
    bad.write_text(cfg.read_text().replace('"yuv420p"', '"rgb24"'))
    with pytest.raises(UsageError, match="to_pix_fmt 'rgb24'"):
        plan_jobs(load_experiment(bad), own)
