"""End-to-end: run, report, resume after SIGKILL, Dask vs local pool, BD numbers."""

from __future__ import annotations

import csv
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _eval_helpers import REPO, experiment_toml
from _procs import alive, children

from codeclab.eval.bdrate import bd_psnr, bd_rate_components
from codeclab.eval.evaluate import report_evaluation, run_evaluation
from codeclab.eval.store import ResultStore

TIME_COLUMNS = {"enc_ratio", "dec_ratio"}


def read_csv(path: Path, drop: set[str] = TIME_COLUMNS) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


def rd_without_times(path: Path) -> list[dict[str, str]]:
    return read_csv(path, {"encode_s", "decode_s"})


def report_tables(out: Path) -> dict[str, list[dict[str, str]]]:
    """Every table of a report that does not depend on wall time."""
    tables = {"seq": read_csv(out / "bdrate_sequences.csv"), "cls": read_csv(out / "bdrate_classes.csv")}
    for p in sorted((out / "rd").glob("*.csv")):
        tables[p.name] = rd_without_times(p)
    return tables


def test_two_codec_four_qp_run_writes_every_report(tiny, tmp_path):
    db = tmp_path / "r.sqlite"
    # threads keep this test light; the process pool and Dask are covered below
    with ThreadPoolExecutor(2) as ex:
        out = run_evaluation(tiny["config"], tiny["data"], db, executor=ex, progress=False)
    s = out.summary
    assert (s.planned, s.done, s.failed) == (2 * 2 * 4, 16, [])
    assert any("Absent" in m for m in out.plan.missing)
    an, paths = report_evaluation(db, tmp_path / "rep")
    rep = tmp_path / "rep"
    for name in ("summary.md", "report.html", "bdrate_sequences.csv", "bdrate_classes.csv",
                 "rd/fq-round.csv", "rd/fq-deadzone.csv", "plots/Ripple.png", "plots/Wave10.png"):
        assert (rep / name).is_file() and (rep / name).stat().st_size > 0, name
    html = (rep / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "Absent" in html
    md = (rep / "summary.md").read_text()
    assert "fq-deadzone vs fq-round" in md and "| T1 |" in md and "Overall" in md
    # no temporary files left behind
    assert not [p for p in rep.rglob("*") if p.name.endswith(".tmp")]
    # every sequence got finite BD numbers, both methods
    for r in an.per_sequence:
        assert r.error is None
        for m in ("pchip", "cubic"):
            assert all(math.isfinite(v) for v in r.bd_rate[m].values())


def test_report_numbers_equal_bdrate_module_on_per_frame_rows(tiny, tmp_path):
    """Recompute every sequence's curve from the stored *frames* (independently of the
    job summaries) and check the report's CSV against bdrate.py directly."""
    db = tmp_path / "r.sqlite"
    with ThreadPoolExecutor(2) as ex:
        run_evaluation(tiny["config"], tiny["data"], db, executor=ex, progress=False)
    report_evaluation(db, tmp_path / "rep")
    con = sqlite3.connect(db)
    curves: dict[tuple[str, str], dict[str, list[float]]] = {}
    fps = {"Ripple": 30.0, "Wave10": 25.0}
    for seq, label, key in con.execute("SELECT sequence, label, key FROM jobs ORDER BY point"):
        fr = con.execute("SELECT bits, psnr_y, psnr_u, psnr_v FROM frames WHERE job_key=? ORDER BY pos", (key,)).fetchall()
        c = curves.setdefault((seq, label), {"rate": [], "psnr_y": [], "psnr_u": [], "psnr_v": []})
        c["rate"].append(sum(f[0] for f in fr) / (len(fr) / fps[seq]) / 1000.0)
        for i, comp in enumerate(("psnr_y", "psnr_u", "psnr_v"), start=1):
            c[comp].append(sum(f[i] for f in fr) / len(fr))
    rows = read_csv(tmp_path / "rep" / "bdrate_sequences.csv", set())
    assert len(rows) == 2 * 2  # 2 sequences x 2 methods
    for r in rows:
        a, t = curves[(r["sequence"], "fq-round")], curves[(r["sequence"], "fq-deadzone")]
        want = bd_rate_components(a, t, method=r["method"])
        for comp in ("Y", "U", "V", "YUV"):
            assert float(r[f"bd_rate_{comp.lower()}"]) == pytest.approx(want[comp], rel=1e-9, abs=1e-9)
        assert float(r["bd_psnr_y"]) == pytest.approx(
            bd_psnr(a["rate"], a["psnr_y"], t["rate"], t["psnr_y"], method=r["method"]), rel=1e-9, abs=1e-9)
    # class rows are the mean of their sequences (one sequence per class here), overall the mean of all
    cls = read_csv(tmp_path / "rep" / "bdrate_classes.csv", set())
    for m in ("pchip", "cubic"):
        seq_y = [float(r["bd_rate_y"]) for r in rows if r["method"] == m]
        overall = next(r for r in cls if r["class"] == "Overall" and r["method"] == m)
        assert float(overall["bd_rate_y"]) == pytest.approx(sum(seq_y) / len(seq_y))


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "codeclab.cli", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), str(REPO), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the pool workers")
def test_sigkill_midway_then_resume_gives_same_tables_without_duplicates(tiny, tmp_path):
    slow = tmp_path / "slow.toml"
    slow.write_text(experiment_toml(tiny["catalogue"], sleep=0.15))
    db = tmp_path / "killed.sqlite"
    cmd = _cli("eval", "run", str(slow), "--data", str(tiny["data"]), "--db", str(db), "--jobs", "2", "-q")
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if db.exists():
                try:
                    with sqlite3.connect(db, timeout=1) as con:
                        done = con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
                except sqlite3.OperationalError:
                    continue
                if done >= 3:
                    break
        assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()}"
        assert 3 <= done < 16
        workers = children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the pool workers notice the driver's death and exit on their own
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(p) for p in workers):
        time.sleep(0.2)
    assert workers and not any(alive(p) for p in workers), "orphaned pool workers survived the driver"
    with sqlite3.connect(db) as con:
        partial = con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        assert 3 <= partial < 16
        # whole jobs only: every stored job has exactly its frames
        for key, n in con.execute("SELECT key, n_frames FROM jobs"):
            assert con.execute("SELECT COUNT(*) FROM frames WHERE job_key=?", (key,)).fetchone()[0] == n == 2
    # resume with the very same command
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"{partial} already done" in res.stderr
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 16
        assert con.execute("SELECT COUNT(DISTINCT key) FROM jobs").fetchone()[0] == 16
        assert con.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == 32
        assert con.execute("SELECT COUNT(*) FROM run_jobs").fetchone()[0] == 16
    # same tables as an uninterrupted run of the same config
    ref_db = tmp_path / "ref.sqlite"
    with ThreadPoolExecutor(2) as ex:
        run_evaluation(slow, tiny["data"], ref_db, executor=ex, progress=False)
    report_evaluation(db, tmp_path / "rep_killed", plots=False)
    report_evaluation(ref_db, tmp_path / "rep_ref", plots=False)
    assert report_tables(tmp_path / "rep_killed") == report_tables(tmp_path / "rep_ref")


def test_dask_local_cluster_gives_same_results_as_local_pool(tiny, tmp_path):
    distributed = pytest.importorskip("distributed")
    from codeclab.eval.runner import dask_executor

    pool_db, dask_db = tmp_path / "pool.sqlite", tmp_path / "dask.sqlite"
    run_evaluation(tiny["config"], tiny["data"], pool_db, jobs=2, progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cl:
        with dask_executor(cl) as ex:
            out = run_evaluation(tiny["config"], tiny["data"], dask_db, executor=ex, progress=False)
    assert out.summary.done == 16 and not out.summary.failed
    report_evaluation(pool_db, tmp_path / "rep_pool", plots=False)
    report_evaluation(dask_db, tmp_path / "rep_dask", plots=False)
    assert report_tables(tmp_path / "rep_pool") == report_tables(tmp_path / "rep_dask")


def test_failures_are_recorded_reported_and_retried(tiny, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(experiment_toml(tiny["catalogue"], extra="""
[[codec]]
label = "not-there"
name = "nosuchcodec"

[[codec]]
label = "fq-partial"
name = "fakeq"
options = { fail_above = 30 }
"""))
    db = tmp_path / "r.sqlite"
    with ThreadPoolExecutor(2) as ex:
        out = run_evaluation(cfg, tiny["data"], db, executor=ex, progress=False)
    s = out.summary
    assert s.planned == 2 * 4 * 4 and s.done == 16 + 4 and len(s.failed) == 8 + 4
    errors = {e for _, e in s.failed}
    assert any("unknown codec 'nosuchcodec'" in e for e in errors)
    assert any("refuses qp 32" in e for e in errors)
    an, _ = report_evaluation(db, tmp_path / "rep", plots=False)
    md = (tmp_path / "rep" / "summary.md").read_text()
    assert "## Failed jobs" in md and "nosuchcodec" in md
    bad = [r for r in an.per_sequence if r.test in ("not-there", "fq-partial")]
    assert bad and all(r.error for r in bad)
    # the good pair still has its numbers
    assert all(r.error is None for r in an.per_sequence if r.test == "fq-deadzone")
    # a second run retries only the failures
    with ThreadPoolExecutor(2) as ex:
        again = run_evaluation(cfg, tiny["data"], db, executor=ex, progress=False)
    assert again.summary.skipped == 20 and len(again.summary.failed) == 12
    with ResultStore(db) as st:
        assert len(st.jobs()) == 32


def test_changed_options_make_new_jobs_and_same_config_makes_none(tiny, tmp_path):
    db = tmp_path / "r.sqlite"
    with ThreadPoolExecutor(2) as ex:
        run_evaluation(tiny["config"], tiny["data"], db, executor=ex, progress=False)
        again = run_evaluation(tiny["config"], tiny["data"], db, executor=ex, progress=False)
        assert (again.summary.skipped, again.summary.ran) == (16, 0)
        cfg2 = tmp_path / "exp2.toml"
        cfg2.write_text(experiment_toml(tiny["catalogue"], qps=(22, 27, 32, 42)))
        third = run_evaluation(cfg2, tiny["data"], db, executor=ex, progress=False)
    assert (third.summary.skipped, third.summary.ran) == (12, 4)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the pool workers")
def test_ctrl_c_stops_quickly_keeps_finished_jobs_and_leaves_no_workers(tiny, tmp_path):
    slow = tmp_path / "slow.toml"
    slow.write_text(experiment_toml(tiny["catalogue"], sleep=0.3))
    db = tmp_path / "int.sqlite"
    cmd = _cli("eval", "run", str(slow), "--data", str(tiny["data"]), "--db", str(db), "--jobs", "2", "-q")
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            try:
                with sqlite3.connect(db, timeout=1) as con:
                    if con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] >= 2:
                        break
            except sqlite3.OperationalError:
                continue
        workers = children(proc.pid)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(p) for p in workers):
        time.sleep(0.2)
    assert workers and not any(alive(p) for p in workers)
    with sqlite3.connect(db) as con:
        n = con.execute("SELECT COUNT(*) FROM jobs WHERE status = 'done'").fetchone()[0]
        assert 2 <= n < 16
        assert con.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == 2 * n


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see the workers")
def test_local_pool_workers_share_their_own_process_group():
    from codeclab.eval.runner import kill_pool, local_executor

    ex = local_executor(2)
    try:
        groups = {ex.submit(os.getpgid, 0).result(timeout=60) for _ in range(6)}
        pids = set(ex._processes)
    finally:
        kill_pool(ex)
    assert len(groups) == 1 and os.getpgrp() not in groups
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)
