"""Training of nrdoq-fcn / nrdoq-ar on blocks recorded by ``nrdoq data`` (``codeclab nrdoq train``).

Supervised: per active coefficient (SQ level > 0 or round-to-nearest > 0) the class of
RDOQ's level relative to SQ's (features.py), masked softmax over the classes RDOQ could
have chosen there, cross-entropy weighted per class by frequency^-p (``cw_power``; clipped
to 10x the most frequent class). p = 0 (plain cross-entropy) gave the best BD-rate: balancing
makes the network change far more levels than RDOQ does (docs/nrdoq.md). Validation split **by picture** (a source's
blocks are all in train or all in validation). Checkpoint ``<run>/checkpoint.pt`` every
``eval_every`` steps (resumes from it), log ``<run>/log.jsonl``; ``export`` writes the
shipped weights (.npz, float32) and the model card (.md).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from codeclab.base.atomic import atomic_write
from codeclab.codecs.hevc.nrdoq.features import (
    N_CLASSES,
    N_LOCAL,
    active_mask,
    ar_state_features,
    block_features,
    drop_channels,
    valid_mask,
)
from codeclab.codecs.hevc.nrdoq.models import build, flops_per_coeff, param_count
from codeclab.codecs.hevc.scalar_quant import scaled_coeffs
from codeclab.lab.nrdoq_data import CLASS_NAMES, SLICE_CODES, Blocks, label_classes, load_blocks

__all__ = ["TrainConfig", "train", "prepare", "evaluate", "export_weights", "split_pictures", "class_costs"]

COEFFS_PER_STEP = 8192


@dataclass
class TrainConfig:
    model: str
    data: Path | tuple[Path, ...]  # one or more folders written by `nrdoq data`
    run: Path
    steps: int = 3000
    coeffs_per_step: int = COEFFS_PER_STEP  # blocks of one size per step, n*n*blocks ~ this
    lr: float = 3e-3
    val_fraction: float = 0.12
    seed: int = 0             # initialisation and batch sampling
    split_seed: int = 0       # which pictures are held out (fixed, so seeds compare on one split)
    drop: tuple[str, ...] = ()
    export: Path | None = None
    progress: bool = True
    eval_every: int = 250
    width: int | None = None
    cw_power: float = 0.0     # class weights frequency^-cw_power (0: plain cross-entropy)
    rd_weight: float = 0.0    # weight of the expected RD regret (bits) added to the cross-entropy
    extra: dict = field(default_factory=dict)


def _remaining_bits(v: np.ndarray) -> np.ndarray:
    """Bits of coeff_abs_level_remaining = v with Rice parameter 0 (prefix + suffix, 9.3.3.11)."""
    v = np.maximum(v, 0)
    big = np.floor(np.log2(np.maximum(v - 3, 1))).astype(np.int64)
    return np.where(v < 4, v + 1, 4 + 2 * big + 1 + 1)


def class_costs(feat: np.ndarray, a: np.ndarray, sq: np.ndarray, qp: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """(…, K) RD cost in bits of each class at each coefficient, relative to level 0: a
    per-coefficient estimate (the neighbours' levels fixed) from what the block carries.

    Distortion (a - l)^2 * Delta^2 / lambda, with Delta^2 = 2^((QP - 4) / 3) the quantizer's
    step in 8-bit SSE units (what RDOQ's errScale gives) and the block's quantizer lambda;
    rate from the block's contexts (the features' sig_coeff_flag and greater1 bit deltas),
    one sign bit, greater2 and the remainder at Rice parameter 0. It prices how much a wrong
    class costs, for the RD-aware loss term; it is not RDOQ (no last position, no group
    flags, no context adaptation)."""
    shp = (-1,) + (1,) * (a.ndim - 1)
    kd = np.exp2((qp.astype(np.float64).reshape(shp) - 4) / 3) / lam.astype(np.float64).reshape(shp)
    sig_d = 4.0 * feat[:, 25].astype(np.float64)
    gt1_d = 4.0 * feat[:, 26].astype(np.float64)
    out = np.zeros(sq.shape + (N_CLASSES,), np.float64)
    levels = [sq, np.maximum(sq - 1, 0), np.zeros_like(sq), sq + 1]
    for c, lv in enumerate(levels):
        lv = lv.astype(np.int64)
        r = np.where(lv >= 1, sig_d + 1.0, 0.0) + np.where(lv >= 2, gt1_d + 1.0, 0.0) + np.where(
            lv >= 3, _remaining_bits(lv - 3), 0.0)
        out[..., c] = kd * (a.astype(np.float64) - lv) ** 2 + r
    return out


def prepare(b: Blocks, idx: np.ndarray, kind: str, drop_idx: list[int], regret: bool = False
            ) -> tuple[torch.Tensor | None, ...]:
    """Inputs, labels, valid masks, 'counts' mask and (``regret``: else None) each class's RD
    regret against RDOQ's class (:func:`class_costs`, >= 0) for blocks ``idx`` of one size.

    fcn: x (B, C, n, n), y (B, n, n), valid (B, n, n, K), use (B, n, n), regret (B, n, n, K).
    ar: rows of the active coefficients: x (R, C + S), y (R,), valid (R, K), use (R,), regret (R, K)."""
    coeffs = b.coeffs[idx].astype(np.int32)
    qp, ci, si, bd = (b.qp[idx].astype(np.int64), b.c_idx[idx].astype(np.int64),
                      b.scan_idx[idx].astype(np.int64), b.bd[idx])
    feat = a = sq = None
    for d in np.unique(bd):  # features in level units: per bit depth
        m = bd == d
        f_d, a_d, sq_d = block_features(coeffs[m], b.log2, qp[m], ci[m], si[m], b.ctx[idx][m], int(d))
        if feat is None:
            feat, a, sq = (np.empty((len(idx),) + f_d.shape[1:], f_d.dtype), np.empty((len(idx),) + a_d.shape[1:], a_d.dtype),
                           np.empty((len(idx),) + sq_d.shape[1:], sq_d.dtype))
        feat[m], a[m], sq[m] = f_d, a_d, sq_d
    y = label_classes(sq, b.rdoq[idx]).astype(np.int64)
    valid = valid_mask(a, sq)
    act = active_mask(a, sq)
    ok = np.take_along_axis(valid, y[..., None], -1)[..., 0]
    use = act & ok
    y[~use] = 0
    rg = None
    if regret:
        cost = class_costs(feat, a, sq, qp, b.lam[idx])
        rg = np.maximum(cost - np.take_along_axis(cost, y[..., None], -1), 0.0).astype(np.float32)
    if kind == "ar":
        st = ar_state_features(b.rdoq[idx], y, act, b.log2, b.scan_idx[idx])
        feat = np.concatenate([feat, st], axis=1)
    if drop_idx:
        feat[:, drop_idx] = 0.0
    if kind == "ar":
        rows = np.moveaxis(feat, 1, -1)[act]
        return (torch.from_numpy(np.ascontiguousarray(rows)), torch.from_numpy(y[act]),
                torch.from_numpy(valid[act]), torch.from_numpy(use[act]),
                None if rg is None else torch.from_numpy(rg[act]))
    return (torch.from_numpy(feat), torch.from_numpy(y), torch.from_numpy(valid), torch.from_numpy(use),
            None if rg is None else torch.from_numpy(rg))


def _logits(model, kind: str, x: torch.Tensor) -> torch.Tensor:
    """Logits with the class axis last."""
    out = model(x)
    return out if kind == "ar" else out.permute(0, 2, 3, 1)


def _masked(logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return logits.masked_fill(~valid, -1e4)


def split_pictures(blocks: dict[int, Blocks], frac: float, seed: int) -> tuple[set[int], set[int]]:
    """(train, validation) picture ids: ``frac`` of the recorded pictures held out, by ``seed``."""
    pics = sorted({int(p) for b in blocks.values() for p in np.unique(b.pic)})
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(pics))
    nval = max(1, int(round(frac * len(pics)))) if len(pics) > 1 else 0
    val = {pics[i] for i in perm[:nval]}
    return set(pics) - val, val


def _class_weights(blocks: dict[int, Blocks], train_pics: set[int], power: float) -> np.ndarray:
    cnt = np.zeros(N_CLASSES, np.float64)
    for b in blocks.values():
        sel = np.isin(b.pic, list(train_pics))
        sq, rd = b.sq[sel], b.rdoq[sel]
        act = (sq != 0) | (rd != 0)
        cnt += np.bincount(label_classes(sq, rd)[act], minlength=N_CLASSES)
    f = np.maximum(cnt, 1) / max(cnt.sum(), 1)
    w = f ** -power
    w = np.minimum(w / w[0], 10.0)
    return w


def evaluate(model, kind: str, blocks: dict[int, Blocks], pics: set[int], drop_idx: list[int],
             max_blocks: int = 4000, seed: int = 1) -> dict:
    """Confusion matrix (rows RDOQ's class, columns predicted) over the active coefficients
    of the validation pictures, accuracy, per-class recall / precision, and (fcn only: the
    AR network's teacher-forced rows are not blocks) nothing else. The AR network is scored
    *teacher-forced* here; its free-running quality shows in the BD-rate benchmark."""
    rng = np.random.default_rng(seed)
    conf = np.zeros((N_CLASSES, N_CLASSES), np.int64)
    model.eval()
    with torch.no_grad():
        for l2, b in blocks.items():
            idx = np.flatnonzero(np.isin(b.pic, list(pics)))
            if len(idx) == 0:
                continue
            if len(idx) > max_blocks:
                idx = np.sort(rng.choice(idx, max_blocks, replace=False))
            for s in range(0, len(idx), 512):
                x, y, valid, use, _ = prepare(b, idx[s:s + 512], kind, drop_idx)
                pred = _masked(_logits(model, kind, x), valid).argmax(-1)
                conf += np.bincount((y[use] * N_CLASSES + pred[use]).numpy(),
                                    minlength=N_CLASSES * N_CLASSES).reshape(N_CLASSES, N_CLASSES)
    model.train()
    tot = conf.sum()
    rec = conf.diagonal() / np.maximum(conf.sum(1), 1)
    prec = conf.diagonal() / np.maximum(conf.sum(0), 1)
    return {"accuracy": float(conf.diagonal().sum() / max(tot, 1)),
            "balanced_accuracy": float(rec[conf.sum(1) > 0].mean()),
            "recall": dict(zip(CLASS_NAMES, map(float, rec))),
            "precision": dict(zip(CLASS_NAMES, map(float, prec))),
            "confusion": conf.tolist(), "coefficients": int(tot)}


def evaluate_quantizer(q, blocks: dict[int, Blocks], pics: set[int], max_blocks: int = 4000,
                       seed: int = 1) -> dict:
    """Confusion of a built quantizer's own inference path (``NRDOQQuantizer.classes``: for
    the AR network its free-running state) against RDOQ on the validation pictures."""
    from codeclab.codecs.hevc.quantizer import QuantBatch

    rng = np.random.default_rng(seed)
    conf = np.zeros((N_CLASSES, N_CLASSES), np.int64)
    for l2, b in blocks.items():
        idx = np.flatnonzero(np.isin(b.pic, list(pics)))
        if len(idx) > max_blocks:
            idx = np.sort(rng.choice(idx, max_blocks, replace=False))
        # batches of one bit depth (a QuantBatch has one)
        chunks = [g[s:s + 1024] for d in np.unique(b.bd[idx]) for g in [idx[b.bd[idx] == d]]
                  for s in range(0, len(g), 1024)]
        for i in chunks:
            d = int(b.bd[i[0]])
            c = b.coeffs[i].astype(np.int32)
            cls, sq = q.classes(QuantBatch(c, l2, b.c_idx[i], b.scan_idx[i], b.qp[i].astype(np.int64),
                                           b.lam[i], False, d, b.ctx[i], True))
            a = np.abs(scaled_coeffs(c, b.qp[i].astype(np.int64), l2, d))
            y = label_classes(sq, b.rdoq[i]).astype(np.int64)
            use = active_mask(a, sq) & np.take_along_axis(valid_mask(a, sq), y[..., None], -1)[..., 0]
            conf += np.bincount(y[use] * N_CLASSES + cls[use], minlength=N_CLASSES ** 2).reshape(N_CLASSES, N_CLASSES)
    rec = conf.diagonal() / np.maximum(conf.sum(1), 1)
    return {"accuracy": float(conf.diagonal().sum() / max(conf.sum(), 1)),
            "recall": dict(zip(CLASS_NAMES, map(float, rec))),
            "precision": dict(zip(CLASS_NAMES, map(float, conf.diagonal() / np.maximum(conf.sum(0), 1)))),
            "confusion": conf.tolist(), "coefficients": int(conf.sum())}


def _data_str(data: Path | tuple[Path, ...]) -> str:
    return " ".join(map(str, data)) if isinstance(data, (tuple, list)) else str(data)


def _atomic_torch_save(obj, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f), binary=True)


def train(cfg: TrainConfig) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed)
    run = Path(cfg.run)
    run.mkdir(parents=True, exist_ok=True)
    blocks = load_blocks(cfg.data)
    train_pics, val_pics = split_pictures(blocks, cfg.val_fraction, cfg.split_seed)
    drop_idx = drop_channels(cfg.drop)
    w = torch.tensor(_class_weights(blocks, train_pics, cfg.cw_power), dtype=torch.float32)
    model = build(cfg.model, cfg.width)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    warm = max(1, cfg.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, cosine decay to 5 %
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(s, cfg.steps) / cfg.steps))))
    ck = run / "checkpoint.pt"
    step, best = 0, None
    if ck.exists():
        state = torch.load(ck, weights_only=False)
        if state["config"]["model"] != cfg.model:
            from codeclab.base.errors import UsageError
            raise UsageError(f"{ck}: checkpoint of model {state['config']['model']}, not {cfg.model}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step, best = state["step"], state.get("best")
        if cfg.progress:
            print(f"resumed {ck} at step {step}", flush=True)
    tr_idx = {l2: np.flatnonzero(np.isin(b.pic, list(train_pics))) for l2, b in blocks.items()}
    sizes = [l2 for l2 in blocks if len(tr_idx[l2])]
    act_cnt = np.array([len(tr_idx[l2]) * (1 << 2 * l2) for l2 in sizes], np.float64)
    p_size = np.sqrt(act_cnt) / np.sqrt(act_cnt).sum()
    rng = np.random.default_rng([cfg.seed, step])
    t0 = time.perf_counter()
    log = (run / "log.jsonl").open("a")
    loss_acc, n_acc = 0.0, 0
    while step < cfg.steps:
        l2 = sizes[int(rng.choice(len(sizes), p=p_size))]
        nb = max(4, cfg.coeffs_per_step >> (2 * l2))
        idx = np.sort(rng.choice(tr_idx[l2], min(nb, len(tr_idx[l2])), replace=False))
        x, y, valid, use, regret = prepare(blocks[l2], idx, cfg.model, drop_idx, regret=bool(cfg.rd_weight))
        logits = _masked(_logits(model, cfg.model, x), valid)
        ce = F.cross_entropy(logits.reshape(-1, N_CLASSES), y.reshape(-1), weight=None, reduction="none")
        wt = w[y.reshape(-1)] * use.reshape(-1).float()
        if cfg.rd_weight:  # expected RD regret of the predicted distribution, in bits
            prob = torch.softmax(logits.reshape(-1, N_CLASSES), -1)
            ce = ce + cfg.rd_weight * (prob * regret.reshape(-1, N_CLASSES)).sum(-1)
        loss = (ce * wt).sum() / wt.sum().clamp_min(1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        loss_acc += float(loss.detach())
        n_acc += 1
        if step % cfg.eval_every == 0 or step == cfg.steps:
            ev = evaluate(model, cfg.model, blocks, val_pics, drop_idx, max_blocks=1500)
            rec = {"step": step, "loss": loss_acc / n_acc, "s": round(time.perf_counter() - t0, 1), **ev}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            loss_acc, n_acc = 0.0, 0
            best = ev if best is None or ev["balanced_accuracy"] >= best["balanced_accuracy"] else best
            _atomic_torch_save({"model": model.state_dict(), "opt": opt.state_dict(),
                                "sched": sched.state_dict(), "step": step, "best": best,
                                "config": {**asdict(cfg), "data": _data_str(cfg.data), "run": str(cfg.run),
                                           "export": str(cfg.export) if cfg.export else None},
                                "val_pics": sorted(val_pics), "train_pics": sorted(train_pics)}, ck)
            if cfg.progress:
                print(f"step {step}/{cfg.steps} loss {rec['loss']:.4f} val acc {ev['accuracy']:.4f} "
                      f"bal {ev['balanced_accuracy']:.4f} recall "
                      + " ".join(f"{k} {v:.3f}" for k, v in ev["recall"].items())
                      + f" ({rec['s']:.0f} s)", flush=True)
    log.close()
    final = evaluate(model, cfg.model, blocks, val_pics, drop_idx)
    if cfg.export:
        export_weights(model, cfg, final, blocks, train_pics, val_pics)
    return final


def export_weights(model, cfg: TrainConfig, ev: dict, blocks: dict[int, Blocks], train_pics: set[int],
                   val_pics: set[int]) -> None:
    """``<export>`` (.npz, float32 state dict + kind / width / dropped inputs) and ``<export>.md``."""
    out = Path(cfg.export)
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"w.{k}": v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    width = model.ch if cfg.model == "fcn" else model.hidden
    arrays.update(kind=np.array(cfg.model), width=np.array(width), drop=np.array(",".join(cfg.drop)))
    atomic_write(out, lambda f: np.savez(f, **arrays), binary=True)
    counts = {f"{1 << l2}x{1 << l2}": int(len(b)) for l2, b in blocks.items()}
    by_slice = {k: int(sum((b.slice == v).sum() for b in blocks.values())) for k, v in SLICE_CODES.items()}
    by_bd = {f"{d}-bit": int(sum((b.bd == d).sum() for b in blocks.values())) for d in (8, 10)}
    conf = np.array(ev["confusion"])
    from codeclab.codecs.hevc.nrdoq.neural_quantizer import NRDOQQuantizer

    fr = evaluate_quantizer(NRDOQQuantizer(cfg.model, out), blocks, val_pics)
    frc = np.array(fr["confusion"])
    lines = [
        f"# nrdoq-{cfg.model}: model card", "",
        f"Network: {type(model).__name__} (models.py), width {width}, {param_count(model)} parameters, "
        f"{flops_per_coeff(model)} FLOPs per coefficient decided "
        f"({'every coefficient of the block' if cfg.model == 'fcn' else 'active coefficients only'}).",
        f"Inputs: features.py ({N_LOCAL} local channels"
        + (", 12 running-state inputs" if cfg.model == "ar" else "") + ")"
        + (f", dropped: {', '.join(cfg.drop)}" if cfg.drop else "") + ".", "",
        "## Data", "",
        f"`codeclab nrdoq data` blocks in `{_data_str(cfg.data)}` (our encoder with HM RDOQ, QPs "
        f"{min(int(b.qp.min()) for b in blocks.values())}-{max(int(b.qp.max()) for b in blocks.values())}, "
        f"recorded as docs/nrdoq.md says; never ../shared/media/val).",
        f"Blocks per size: {counts}; by slice type: {by_slice}; by bit depth: {by_bd}. "
        f"Sources: {len(train_pics)} train, {len(val_pics)} validation (split by picture).", "",
        "## Training", "",
        f"`codeclab nrdoq train {cfg.model} --data {_data_str(cfg.data)} --run {cfg.run} --steps {cfg.steps} "
        f"--lr {cfg.lr} --cw-power {cfg.cw_power:g} --rd-weight {cfg.rd_weight:g} --width {width} --seed {cfg.seed} --split-seed {cfg.split_seed}"
        + (f" --drop {' '.join(cfg.drop)}" if cfg.drop else "")
        + f" --export {cfg.export}`", "",
        f"Loss: masked cross-entropy, class weights frequency^-{cfg.cw_power:g} (clipped at 10x)"
        + (f", plus {cfg.rd_weight:g} x the expected RD regret in bits (class_costs)" if cfg.rd_weight else "")
        + ".", "",
        f"## Validation ({ev['coefficients']} active coefficients of the validation pictures"
        + (", teacher-forced running state" if cfg.model == "ar" else "") + ")", "",
        f"Accuracy {ev['accuracy']:.4f}, balanced accuracy {ev['balanced_accuracy']:.4f}.", "",
        "| class | recall | precision |", "| --- | --- | --- |",
        *[f"| {k} | {ev['recall'][k]:.3f} | {ev['precision'][k]:.3f} |" for k in CLASS_NAMES], "",
        "Confusion (rows: RDOQ's class, columns: predicted):", "",
        "| | " + " | ".join(CLASS_NAMES) + " |", "| --- " * (N_CLASSES + 1) + "|",
        *[f"| {CLASS_NAMES[i]} | " + " | ".join(str(int(v)) for v in conf[i]) + " |" for i in range(N_CLASSES)],
        "",
        f"## The quantizer's own inference path ({fr['coefficients']} active coefficients"
        + (", free-running state: its own earlier decisions" if cfg.model == "ar" else "") + ")", "",
        f"Accuracy {fr['accuracy']:.4f}. Recall / precision: "
        + ", ".join(f"{k} {fr['recall'][k]:.3f} / {fr['precision'][k]:.3f}" for k in CLASS_NAMES) + ".", "",
        "| | " + " | ".join(CLASS_NAMES) + " |", "| --- " * (N_CLASSES + 1) + "|",
        *[f"| {CLASS_NAMES[i]} | " + " | ".join(str(int(v)) for v in frc[i]) + " |" for i in range(N_CLASSES)],
        "",
    ]
    atomic_write(out.with_suffix(".md"), lambda f: f.write("\n".join(lines)))
