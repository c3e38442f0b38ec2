"""Which restore should `enhance` default to? SNR and log-spectral distance (LSD, the `compare`
metrics) of 8-bit truncations of held-out recordings restored by bin-centre, the posterior mean and
sampling at K = 4 and 16 calls per stage. Prints a table and writes JSON.

    python benchmarks/bench_modes.py --corpus ~/.cache/upscale-audio-corpus/corpus [--model M.pt]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from report import pick_files, print_table, write_json

from upscale_audio import checkpoint, intervals, metrics
from upscale_audio.enhance import enhance_array


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--sets", nargs="+", default=["speech_16k", "music_44k", "speech_8k"])
    ap.add_argument("--seconds", type=float, default=20.0, help="held-out audio per set")
    ap.add_argument("--out", type=Path, default=Path("bench-results/modes.json"))
    args = ap.parse_args()
    ckpt = checkpoint.load(args.model)
    candidates = {
        "bin-centre": lambda a: intervals.restore_simple(*intervals.linear(a.u, 8), "bin-centre"),
        "mean": lambda a: enhance_array(a.u, 8, ckpt, mode="mean", rate=a.rate).u,
        "sample K=4": lambda a: enhance_array(a.u, 8, ckpt, mode="sample", steps=4, rate=a.rate).u,
        "sample K=16": lambda a: enhance_array(a.u, 8, ckpt, mode="sample", steps=16, rate=a.rate).u,
    }
    rows = []
    for s in args.sets:
        files = pick_files(args.corpus / s / "heldout", args.seconds)
        refs = [a.u - 32768 for a in files]
        for name, fn in candidates.items():
            outs = [fn(a) - 32768 for a in files]
            rows.append({"set": s, "restore": name, "files": len(files),
                         "snr_db": metrics.snr_db(np.concatenate([r.ravel() for r in refs]),
                                                  np.concatenate([o.ravel() for o in outs])),
                         "lsd": float(np.mean([metrics.lsd(r, o) for r, o in zip(refs, outs)]))})
            print(rows[-1], flush=True)
    print_table(f"8-bit restores, {args.seconds:g} s of held-out audio per set (model sha {ckpt.sha256[:12]}); "
                "SNR (higher is better) and LSD (lower is better):",
                ["set", "restore", "SNR dB", "LSD"],
                [[r["set"], r["restore"], f"{r['snr_db']:.2f}", f"{r['lsd']:.3f}"] for r in rows])
    write_json(args.out, torch.device("cpu"), rows, model=str(ckpt.path), model_sha256=ckpt.sha256)


if __name__ == "__main__":
    main()
