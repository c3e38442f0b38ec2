"""Training benchmark: representations and settings compared at equal training time.

Each variant is a set of ``--set`` overrides on a base config. Every variant trains for the same
wall-clock minutes on the same data, then its EMA model is scored on held-out files with
``bits_per_sample`` (stochastic ELBO, ``--passes`` draws). Prints a table and writes JSON.

    python benchmarks/bench_train.py --data CORPUS/speech_16k/train --heldout CORPUS/speech_16k/heldout \
        --config configs/lowbyte.toml --minutes 5 --variant plain:model.features=plain \
        --variant scaled: --out bench-results/train.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from report import device_name, print_table, write_json

from upscale_audio import audio, checkpoint
from upscale_audio.config import load_config
from upscale_audio.enhance import bits_per_sample
from upscale_audio.train import train


def heldout_arrays(path: Path, max_files: int) -> list[np.ndarray]:
    files = [f for f, _ in audio.find_audio([path])]
    step = max(1, len(files) // max_files) if max_files else 1
    return [audio.read(f).u for f in files[::step][: max_files or None]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, nargs="+", required=True)
    ap.add_argument("--heldout", type=Path, required=True)
    ap.add_argument("--config", type=Path, default=Path("configs/lowbyte.toml"))
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--variant", action="append", default=[], help="name:key=v,key=v (empty after ':' = base)")
    ap.add_argument("--heldout-files", type=int, default=0, help="score every k-th file to this many (0: all)")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--given-bits", type=int, default=8)
    ap.add_argument("--runs", type=Path, default=Path("runs/bench"))
    ap.add_argument("--out", type=Path, default=Path("bench-results/train.json"))
    args = ap.parse_args()
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
        lm = checkpoint.load(run_dir / "latest.pt")
        res = bits_per_sample(held, lm, given_bits=args.given_bits, passes=args.passes, device=device)
        row = {"variant": name, "overrides": overrides, "minutes": args.minutes, "steps": rec["step"],
               "train_samples_per_s": rec.get("samples_per_s"), "train_bpd_last": rec.get("bpd"),
               "heldout_bpd": res.bits_per_sample, "heldout_stderr": res.stderr,
               "heldout_samples": res.samples, "params": lm.model.num_parameters(),
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
