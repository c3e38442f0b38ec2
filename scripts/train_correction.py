"""Train the G.711 correction net (upscale_audio/correction.py) on the corpus's train split.

Each file is coded to mu-law or A-law (alternating by file; sox's codes, as users make them, or
libsndfile's where sox is missing), its classical estimate's parts are computed
(``classical.components``) and the net learns the shift that brings the estimate to the original,
weighted to the squared error in sample units. Validation: train-split files the training does not
read (the held-out splits stay for the benchmarks). Writes the weights (numpy, for
``correction.load``) and a JSON log of the curve.

    python scripts/train_correction.py --corpus $C --out upscale_audio/models/g711_correction.npz [--steps 3000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_g711 import g711_codes  # noqa: E402
from report import pick_files  # noqa: E402

from upscale_audio import audio, classical, correction, intervals, metrics  # noqa: E402
from upscale_audio.correction_net import CorrectionNet  # noqa: E402

# (set, seconds for training, seconds for validation): 8 kHz speech first, then the rest G.711 meets
SETS = (("speech_8k", 1800, 60), ("speech_8k_ru", 600, 0), ("speech_16k", 600, 30), ("music_16k", 600, 30))


def examples(files: list[audio.AudioFile]) -> list[dict[str, np.ndarray]]:
    """Per file: features float32 [8, T], target shift (bin widths) and weight (bin width), float32 [T],
    plus lo, hi, est and the original u for scoring."""
    out = []
    for i, a in enumerate(files):
        law = intervals.LAWS[i % 2]
        lo, hi = (v.astype(np.int64) for v in intervals.g711(g711_codes(a.path, a.u, law), law))
        c = classical.components(lo, hi, a.rate)
        x = correction.features(lo[0], hi[0], c.local[0], c.wiener[0], c.mu[0], c.sigma[0], c.mix[0])
        width = (hi[0] - lo[0]).astype(np.float64)
        out.append({"x": x, "target": ((a.u[0] - c.mix[0]) / width).astype(np.float32),
                    "width": width.astype(np.float32), "lo": lo[0], "hi": hi[0], "est": c.mix[0], "u": a.u[0],
                    "rate": np.array(a.rate)})
    return out


def split(folder: Path, train_s: float, val_s: float) -> tuple[list[audio.AudioFile], list[audio.AudioFile]]:
    """The first ``train_s`` seconds of ``pick_files``'s order for training, the next ``val_s`` for validation."""
    files = pick_files(folder, train_s + val_s)
    total, cut = 0.0, len(files)
    for i, a in enumerate(files):
        total += a.frames / a.rate
        if total >= train_s:
            cut = i + 1
            break
    return files[:cut], files[cut:] if val_s else []


def gain_db(net: CorrectionNet, val: list[dict[str, np.ndarray]]) -> float:
    """SNR gain of the corrected estimate over the classical one, pooled over ``val``, in dB."""
    ref, base, corr = [], [], []
    with torch.no_grad():
        for ex in val:
            shift = net(torch.from_numpy(ex["x"])[None])[0].numpy().astype(np.float64)
            for lst, v in ((base, ex["est"]), (corr, ex["est"] + shift * ex["width"])):
                lst.append(np.clip(np.floor(v + 0.5), ex["lo"], ex["hi"] - 1) - 32768)
            ref.append(ex["u"] - 32768.0)
    r = np.concatenate(ref)
    return metrics.snr_db(r, np.concatenate(corr)) - metrics.snr_db(r, np.concatenate(base))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=4000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", type=Path, default=None, help="start from these weights (a correction .npz)")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--scale", type=float, default=1.0, help="scale the seconds per set (a quick try: 0.01)")
    args = ap.parse_args()
    if args.out.exists():
        sys.exit(f"error: {args.out} exists; remove it or name another --out")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    train, val = [], {}
    for name, train_s, val_s in SETS:
        tr, va = split(args.corpus / name / "train", train_s * args.scale, val_s * args.scale)
        train += examples(tr)
        if va:
            val[name] = examples(va)
        print(f"{name}: {len(tr)} training files, {len(va)} validation files ({time.time() - t0:.0f} s)", flush=True)
    x = np.concatenate([ex["x"] for ex in train], axis=1)
    target = np.concatenate([ex["target"] for ex in train])
    width = np.concatenate([ex["width"] for ex in train])
    starts = np.concatenate([[0], np.cumsum([len(ex["u"]) for ex in train])])
    # crops never straddle two files
    ok = np.concatenate([np.arange(s, e - args.length) for s, e in zip(starts[:-1], starts[1:]) if e - s > args.length])
    net = CorrectionNet()
    steps_before = 0
    if args.init is not None:
        start = correction.load(args.init)
        net.load_params_np(start.params)
        steps_before = int(start.meta.get("steps_total", start.meta.get("steps", 0)))
    opt = torch.optim.AdamW(net.parameters(), args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=args.lr / 20)
    rng = np.random.default_rng(args.seed)
    log: list[dict[str, float]] = []
    features_s = time.time() - t0
    for step in range(1, args.steps + 1):
        idx = rng.choice(ok, args.batch)
        xb = torch.from_numpy(np.stack([x[:, i:i + args.length] for i in idx]))
        yb = torch.from_numpy(np.stack([target[i:i + args.length] for i in idx]))
        wb = torch.from_numpy(np.stack([width[i:i + args.length] for i in idx])) ** 2
        loss = ((net(xb) - yb) ** 2 * wb).sum() / wb.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % args.eval_every == 0 or step == args.steps:
            row = {"step": step, "loss": loss.item(), "train_s": time.time() - t0 - features_s}
            row.update({f"val_gain_db_{k}": gain_db(net, v) for k, v in val.items()})
            log.append(row)
            print(json.dumps(row), flush=True)
    meta = {"steps": args.steps, "steps_total": steps_before + args.steps,
            "init": str(args.init) if args.init else None, "batch": args.batch, "length": args.length,
            "lr": args.lr, "seed": args.seed,
            "threads": args.threads, "sets": SETS, "features_s": features_s, "log": log,
            "codes": "sox" if shutil.which("sox") else "libsndfile", "rates": sorted({int(ex["rate"]) for ex in train})}
    correction.save(args.out, net.params_np(), meta)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
