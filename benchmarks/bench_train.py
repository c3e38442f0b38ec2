"""Training benchmark: recipes compared at equal training time, on held-out splits.

Two ways to run it:

* ``--variant``: each variant (``--set`` overrides on ``--config``) trains here, one after the
  other, for the same ``--minutes``; its EMA model is then scored on ``--heldout`` files.
* ``--checkpoints NAME=PATH ...``: score runs that trained side by side for the same CPU minutes
  (each ``train`` with ``train.num_threads=1``, stopped at the same elapsed time), plus
  ``--untrained NAME=CONFIG`` rows (a recipe's starting point: with a prior, the prior alone) on
  the held-out splits of ``--corpus``: bits per sample of the low byte (given the high byte) and of
  all 16 bits, the same ELBO draws for every model.

Prints a table and writes JSON.

    python benchmarks/bench_train.py --data CORPUS/speech_16k/train --heldout CORPUS/speech_16k/heldout \
        --config configs/lowbyte.toml --minutes 5 --variant plain:model.features=plain \
        --variant scaled: --out bench-results/train.json
    python benchmarks/bench_train.py --corpus $C --checkpoints predict=runs/cmp_predict/latest.pt \
        prior=runs/campaign_prior/latest.pt --untrained prior-alone=configs/prior.toml
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from report import device_name, pick_files, print_table, write_json

from upscale_audio import audio, checkpoint
from upscale_audio.config import load_config
from upscale_audio.scoring import bits_per_sample
from upscale_audio.train import train


def heldout_arrays(path: Path, max_files: int) -> list[np.ndarray]:
    files = [f for f, _ in audio.find_audio([path])]
    step = max(1, len(files) // max_files) if max_files else 1
    return [audio.read(f).u for f in files[::step][: max_files or None]]


SETS = ("speech_16k", "speech_8k", "music_44k", "music_16k")


def untrained(config: Path, path: Path) -> Path:
    """Write the untrained model of a config (zero output layer) as a checkpoint."""
    from upscale_audio.checkpoint import atomic_save, make_checkpoint
    from upscale_audio.model import build_model
    from upscale_audio.policy import StepLossTracker

    cfg = load_config(config)
    m = build_model(cfg)
    tracker = StepLossTracker(cfg.ardm.schedule, cfg.ardm.tracker_bins, cfg.ardm.tracker_momentum)
    atomic_save(make_checkpoint(cfg, m.state_dict(), tracker, {"steps": 0, "train_seconds": 0.0}), path)
    return path


def score_checkpoints(args: argparse.Namespace) -> None:

    models = dict(item.split("=", 1) for item in args.checkpoints)
    for item in args.untrained:
        name, cfg = item.split("=", 1)
        models[name] = str(untrained(Path(cfg), args.runs / f"untrained-{name}.pt"))
    lms = {name: checkpoint.load(Path(p)) for name, p in models.items()}
    rows = []
    for s in args.sets:
        items = [a.u for a in pick_files(args.corpus / s / "heldout", args.seconds)]
        for name, ckpt in lms.items():
            row = {"set": s, "model": name, "path": models[name], "steps": ckpt.meta.get("steps"),
                   "train_minutes": float(ckpt.meta.get("train_seconds", 0.0)) / 60,
                   "samples": int(sum(x.size for x in items))}
            for gb in (8, 0):  # the same seed for every model: paired draws of (t, order)
                r = bits_per_sample(items, ckpt, given_bits=gb, passes=args.passes)
                row[f"bpd_given_{gb}"], row[f"stderr_given_{gb}"] = r.bits_per_sample, r.stderr
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    device = torch.device("cpu")
    print_table(f"Held-out bits/sample ({args.seconds:g} s per set, {args.passes} ELBO passes, same draws for "
                "every model); train minutes are wall minutes of one thread each:",
                ["set", "model", "train min", "steps", "low byte bpd", "16-bit bpd"],
                [[r["set"], r["model"], f"{r['train_minutes']:.1f}", str(r["steps"]),
                  f"{r['bpd_given_8']:.3f} ± {r['stderr_given_8']:.3f}",
                  f"{r['bpd_given_0']:.3f} ± {r['stderr_given_0']:.3f}"] for r in rows])
    write_json(args.out, device, rows, seconds=args.seconds, passes=args.passes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", nargs="*", default=[], help="NAME=PATH of checkpoints to score")
    ap.add_argument("--untrained", nargs="*", default=[], help="NAME=CONFIG: score a recipe's untrained model")
    ap.add_argument("--corpus", type=Path, help="corpus root (with --checkpoints)")
    ap.add_argument("--sets", nargs="+", default=list(SETS))
    ap.add_argument("--seconds", type=float, default=20.0, help="held-out audio per set (with --checkpoints)")
    ap.add_argument("--data", type=Path, nargs="+")
    ap.add_argument("--heldout", type=Path)
    ap.add_argument("--config", type=Path, default=Path("configs/lowbyte.toml"))
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--variant", action="append", default=[], help="name:key=v,key=v (empty after ':' = base)")
    ap.add_argument("--heldout-files", type=int, default=0, help="score every k-th file to this many (0: all)")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--given-bits", type=int, default=8)
    ap.add_argument("--runs", type=Path, default=Path("runs/bench"))
    ap.add_argument("--out", type=Path, default=Path("bench-results/train.json"))
    args = ap.parse_args()
    if args.checkpoints or args.untrained:
        if args.corpus is None:
            ap.error("--checkpoints/--untrained need --corpus")
        args.runs.mkdir(parents=True, exist_ok=True)
        score_checkpoints(args)
        return
    if not args.data or not args.heldout:
        ap.error("--variant runs need --data and --heldout")
    variants = args.variant or ["scaled:"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    held = heldout_arrays(args.heldout, args.heldout_files)
    rows = []
    for v in variants:
        name, _, sets = v.partition(":")
        overrides = [s for s in sets.split(",") if s]
        cfg = load_config(args.config, overrides + ["train.max_steps=100000000", "train.val_every=100000000"])
        run_dir = args.runs / f"{name}-{int(time.time())}"
        t0 = time.time()
        rec = train(cfg, args.data, run_dir, None, max_minutes=args.minutes, quiet=True)
        ckpt = checkpoint.load(run_dir / "latest.pt")
        res = bits_per_sample(held, ckpt, given_bits=args.given_bits, passes=args.passes, device=device)
        row = {"variant": name, "overrides": overrides, "minutes": args.minutes, "steps": rec["step"],
               "train_samples_per_s": rec.get("samples_per_s"), "train_bpd_last": rec.get("bpd"),
               "heldout_bpd": res.bits_per_sample, "heldout_stderr": res.stderr,
               "heldout_samples": res.samples, "params": ckpt.model.num_parameters(),
               "wall_s": time.time() - t0, "run_dir": str(run_dir)}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print_table(f"Training at equal time ({args.minutes} min each) on {device} ({device_name(device)}); held-out "
                f"bits/sample below the top {args.given_bits} bits ({args.passes} ELBO passes):",
                ["variant", "overrides", "params", "steps", "train samples/s", "held-out bpd", "s.e."],
                [[r["variant"], " ".join(r["overrides"]) or "(base)", f"{r['params']:,}", str(r["steps"]),
                  f"{r['train_samples_per_s'] or 0:,.0f}", f"{r['heldout_bpd']:.4f}", f"{r['heldout_stderr']:.4f}"]
                 for r in rows])
    write_json(args.out, device, rows, config=str(args.config))


if __name__ == "__main__":
    main()
