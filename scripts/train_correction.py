"""Train the G.711 correction net (upscale_audio/correction.py) on the corpus's train split.

Each file is coded to mu-law or A-law (alternating by file; sox's codes, as users make them, or
libsndfile's where sox is missing), its classical estimate's parts are computed
(``classical.components``) and the net learns the shift that brings the estimate to the original,
weighted to the squared error in sample units. Validation: train-split files the training does not
read (the held-out splits stay for the benchmarks). Writes the weights (numpy, for
``correction.load``; the net's shape, ``correction.Arch``, in their metadata) and a JSON log of the curve.

    python scripts/train_correction.py --corpus $C --out upscale_audio/models/g711_correction.npz [--steps 3000]

An equal-CPU comparison of shapes runs several of these at once with ``--threads 1 --cpu-minutes
M`` (the learning-rate schedule follows each process's own CPU time) and ``--cache DIR`` (each
file's features are computed once and read back by later runs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_g711 import g711_codes  # noqa: E402
from report import pick_files  # noqa: E402

from upscale_audio import audio, classical, correction, intervals, metrics, prior, spectral  # noqa: E402
from upscale_audio.correction_net import CorrectionNet  # noqa: E402

# (set, seconds for training, seconds for validation): 8 kHz speech first, then the rest G.711 meets
SETS = (("speech_8k", 1800, 60), ("speech_8k_ru", 600, 0), ("speech_16k", 600, 30), ("music_16k", 600, 30))
CODER = "sox" if shutil.which("sox") else "libsndfile"
# what the cached features depend on: a change to any of these modules starts a fresh cache folder
FEATURES_KEY = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in (
    correction, classical, spectral, prior, intervals))).hexdigest()[:12]


def examples(files: list[audio.AudioFile], cache: Path | None) -> list[dict[str, np.ndarray]]:
    """Per file: features float32 [8, T], target shift (bin widths) and weight (bin width), float32 [T],
    plus lo, hi, est and the original u for scoring. With ``cache``, each file's arrays are kept
    there (a folder per ``FEATURES_KEY``, corpus set and coder) and read back by later runs."""
    out = []
    for i, a in enumerate(files):
        law = intervals.LAWS[i % 2]
        kept = cache / FEATURES_KEY / a.path.parent.parent.name / CODER / f"{a.path.stem}.{law}.npz" if cache else None
        if kept is not None and kept.is_file():
            with np.load(kept) as z:
                out.append({k: z[k] for k in z.files})
            continue
        lo, hi = (v.astype(np.int64) for v in intervals.g711(g711_codes(a.path, a.u, law), law))
        c = classical.components(lo, hi, a.rate)
        x = correction.features(lo[0], hi[0], c.local[0], c.wiener[0], c.mu[0], c.sigma[0], c.mix[0])
        width = (hi[0] - lo[0]).astype(np.float64)
        ex = {"x": x, "target": ((a.u[0] - c.mix[0]) / width).astype(np.float32),
              "width": width.astype(np.float32), "lo": lo[0], "hi": hi[0], "est": c.mix[0], "u": a.u[0],
              "rate": np.array(a.rate)}
        if kept is not None:
            kept.parent.mkdir(parents=True, exist_ok=True)
            np.savez(kept.with_suffix(".tmp.npz"), **ex)
            kept.with_suffix(".tmp.npz").replace(kept)
        out.append(ex)
    return out


def _cut(files: list[audio.AudioFile], seconds: float) -> int:
    """How many of ``files`` (in order) it takes to reach ``seconds`` of audio."""
    total = 0.0
    for i, a in enumerate(files):
        total += a.frames / a.rate
        if total >= seconds:
            return i + 1
    return len(files)


def split(folder: Path, base_s: float, val_s: float, train_s: float
          ) -> tuple[list[audio.AudioFile], list[audio.AudioFile]]:
    """In ``pick_files``' order: validation is what follows the first ``base_s`` seconds (SETS' figure)
    up to ``base_s + val_s``, so it stays put whatever ``--train-seconds`` asks; training is the first
    ``train_s`` seconds of the other files."""
    files = pick_files(folder, max(base_s, train_s) + val_s)
    a = _cut(files, base_s)
    b = len(pick_files(folder, base_s + val_s)) if val_s else a
    rest = files[:a] + files[b:]
    return rest[:_cut(rest, train_s)], files[a:b]


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
    ap.add_argument("--cpu-minutes", type=float, default=0.0,
                    help="train for this many CPU minutes of this process in place of --steps (equal-time comparisons)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=4000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", type=Path, default=None, help="start from these weights (a correction .npz)")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--scale", type=float, default=1.0, help="scale the seconds per set (a quick try: 0.01)")
    ap.add_argument("--train-seconds", action="append", default=[], metavar="SET=S",
                    help="training seconds for one set in place of SETS' figure (repeatable)")
    ap.add_argument("--channels", type=int, default=correction.Arch.channels)
    ap.add_argument("--dilations", default=",".join(map(str, correction.Arch().dilations)),
                    help="one gated layer per dilation, comma-separated")
    ap.add_argument("--cache", type=Path, default=None, help="keep each file's features here for later runs")
    args = ap.parse_args()
    if args.out.exists():
        sys.exit(f"error: {args.out} exists; remove it or name another --out")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    try:
        arch = correction.Arch(args.channels, tuple(int(d) for d in args.dilations.split(",")))
        seconds = {name: float(s) for name, s in (kv.split("=") for kv in args.train_seconds)}
    except ValueError:
        sys.exit(f"error: --dilations takes whole numbers with commas (1,2,4) and --train-seconds SET=SECONDS "
                 f"(speech_8k=6000); got {args.dilations!r} and {args.train_seconds}")
    if args.channels < 1 or min(arch.dilations) < 1 or (args.steps < 1 and args.cpu_minutes <= 0):
        sys.exit("error: --channels, every dilation and --steps (or --cpu-minutes) must be positive")
    sets = [(name, base_s, val_s, seconds.pop(name, base_s)) for name, base_s, val_s in SETS]
    if seconds:
        sys.exit(f"error: --train-seconds names no set of {[s[0] for s in SETS]}: {sorted(seconds)}")
    train, val = [], {}
    for name, base_s, val_s, train_s in sets:
        tr, va = split(args.corpus / name / "train", base_s * args.scale, val_s * args.scale, train_s * args.scale)
        train += [{k: ex[k] for k in ("x", "target", "width", "rate")} for ex in examples(tr, args.cache)]
        if va:
            val[name] = examples(va, args.cache)
        print(f"{name}: {len(tr)} training files, {len(va)} validation files ({time.time() - t0:.0f} s)", flush=True)
    x = np.concatenate([ex["x"] for ex in train], axis=1)
    target = np.concatenate([ex["target"] for ex in train])
    width = np.concatenate([ex["width"] for ex in train])
    starts = np.concatenate([[0], np.cumsum([len(ex["target"]) for ex in train])])
    # crops never straddle two files
    ok = np.concatenate([np.arange(s, e - args.length) for s, e in zip(starts[:-1], starts[1:]) if e - s > args.length])
    rates = sorted({int(ex["rate"]) for ex in train})
    del train  # the concatenated arrays are all the steps read
    net = CorrectionNet(arch)
    steps_before = 0
    if args.init is not None:
        start = correction.load(args.init)
        if start.arch != arch:
            sys.exit(f"error: --init {args.init} is {start.arch}, not {arch}; give its --channels and --dilations")
        net.load_params_np(start.params)
        steps_before = int(start.meta.get("steps_total", start.meta.get("steps", 0)))
    opt = torch.optim.AdamW(net.parameters(), args.lr)
    rng = np.random.default_rng(args.seed)
    log: list[dict[str, float]] = []
    features_s = time.time() - t0
    train_cpu, step = 0.0, 0  # CPU seconds of this process spent in training steps (all its threads)
    while True:
        done = train_cpu / (60 * args.cpu_minutes) if args.cpu_minutes else step / args.steps
        if done >= 1:
            break
        for group in opt.param_groups:  # cosine from lr to lr / 20 over the steps or the CPU budget
            group["lr"] = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done)))
        c0 = time.process_time()
        step += 1
        idx = rng.choice(ok, args.batch)
        xb = torch.from_numpy(np.stack([x[:, i:i + args.length] for i in idx]))
        yb = torch.from_numpy(np.stack([target[i:i + args.length] for i in idx]))
        wb = torch.from_numpy(np.stack([width[i:i + args.length] for i in idx])) ** 2
        loss = ((net(xb) - yb) ** 2 * wb).sum() / wb.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        train_cpu += time.process_time() - c0
        last = (train_cpu >= 60 * args.cpu_minutes) if args.cpu_minutes else step == args.steps
        if step % args.eval_every == 0 or last:
            row = {"step": step, "loss": loss.item(), "train_s": time.time() - t0 - features_s,
                   "train_cpu_min": train_cpu / 60}
            row.update({f"val_gain_db_{k}": gain_db(net, v) for k, v in val.items()})
            log.append(row)
            print(json.dumps(row), flush=True)
    meta = {"steps": step, "steps_total": steps_before + step, "train_cpu_min": train_cpu / 60,
            "init": str(args.init) if args.init else None, "batch": args.batch, "length": args.length,
            "lr": args.lr, "seed": args.seed,
            "threads": args.threads, "sets": sets, **arch.meta(), "features_s": features_s, "log": log,
            "codes": CODER, "rates": rates}
    correction.save(args.out, net.params_np(), meta)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
