"""Training command: colour conversion vs FFmpeg, a tiny run, resume, export with a card."""

from __future__ import annotations

import av
import numpy as np
import torch
from PIL import Image

from codeclab.cli.lic import train_main
from codeclab.codecs.lic.codec import load_model
from codeclab.lab.lic_train import export_weights, rgb_to_yuv420


def test_rgb_to_yuv_matches_swscale_bt709_limited():
    rgb = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    g = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv444p", dst_colorspace="ITU709", dst_color_range="MPEG")
    ref = [np.from_dlpack(p).astype(np.float64) for p in g.planes]
    y, u, v = rgb_to_yuv420(rgb)
    assert np.abs(ref[0] - y).max() <= 1  # swscale's fixed-point rounding
    for r, c in zip(ref[1:], (u, v)):
        assert np.abs(r.reshape(32, 2, 48, 2).mean((1, 3)) - c).max() <= 1


def _pictures(folder, n, seed):
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        yy, xx = np.mgrid[0:128, 0:160]
        base = np.stack([np.sin(xx / (5 + i)), np.cos(yy / 7), np.sin((xx + yy) / 9)], -1) * 100 + 128
        img = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"p{i}.png")


def test_tiny_run_resumes_and_exports(tmp_path):
    _pictures(tmp_path / "train", 3, 0)
    _pictures(tmp_path / "val", 1, 1)
    run = tmp_path / "run"
    threads = torch.get_num_threads()  # train() sets the process-wide count
    args = ["--data", str(tmp_path / "train"), "--val", str(tmp_path / "val"), "--out", str(run), "--crop", "64",
            "--batch", "2", "--log-every", "1", "--val-every", "100", "--resume"]
    assert train_main(args + ["--steps", "2"]) == 0
    ck = torch.load(run / "ckpt.pt", weights_only=False)
    assert ck["step"] == 2
    assert train_main(args + ["--steps", "3"]) == 0  # same command, more steps: resumes
    ck2 = torch.load(run / "ckpt.pt", weights_only=False)
    assert ck2["step"] == 3
    assert "resumed from" in (run / "train.log").read_text()
    w = export_weights(run / "ckpt.pt", tmp_path / "w" / "m.pt", tmp_path / "val")
    card = w.with_suffix(".md").read_text()
    assert "| 6 |" in card and "model id" in card
    assert all(v.dtype == torch.float16 for v in torch.load(w, weights_only=False)["model"].values())
    assert load_model(w).model.qualities == 6
    torch.set_num_threads(threads)
