"""The posterior mean by input depth: held-out recordings truncated to N linear bits (N below 8
leaves the high byte open too), restored with ``enhance --mode mean``; SNR against the 16-bit
original beside the bin centre's and the classical estimate's (``--method lmmse``), and the network
calls made. Prints a table and writes JSON.

    python benchmarks/bench_depths.py --corpus $C [--model M.pt] [--depths 4 6 8] [--seconds 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from report import pick_files, print_table, snr_db, write_json

from upscale_audio import checkpoint, classical, intervals
from upscale_audio.enhance import enhance_intervals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=None, help="default: the bundled model enhance picks for each depth (checkpoint.model_for)")
    ap.add_argument("--sets", nargs="+", default=["speech_8k", "speech_16k", "music_16k"])
    ap.add_argument("--depths", type=int, nargs="+", default=[4, 6, 8])
    ap.add_argument("--seconds", type=float, default=10.0, help="held-out audio per set")
    ap.add_argument("--out", type=Path, default=Path("bench-results/depths.json"))
    args = ap.parse_args()
    if not all(1 <= d <= 15 for d in args.depths):
        ap.error(f"--depths {args.depths}: each must be between 1 and 15 (16 leaves nothing to restore)")
    rows = []
    for name in args.sets:
        files = pick_files(args.corpus / name / "heldout", args.seconds)
        for depth in args.depths:
            ref, centre, mean, lmmse, calls = [], [], [], [], 0
            for a in files:
                lo, hi = intervals.linear(a.u, depth)
                ckpt = checkpoint.load_cached(checkpoint.model_for(args.model, lo, hi, mode="mean"))
                r = enhance_intervals(lo, hi, ckpt, mode="mean", rate=a.rate)
                ref.append(a.u.ravel())
                centre.append(((lo + hi - 1) // 2).ravel())
                mean.append(r.u.ravel())
                lmmse.append(classical.interval_mean(lo, hi, a.rate).ravel())
                calls = max(calls, r.calls)
            x, c, m, ll = (np.concatenate(v) for v in (ref, centre, mean, lmmse))
            rows.append({"set": name, "depth": depth, "seconds": sum(a.frames / a.rate for a in files),
                         "model": ckpt.path.name if ckpt.path else "bundled",
                         "bin_centre_db": snr_db(x, c), "mean_db": snr_db(x, m), "lmmse_db": snr_db(x, ll),
                         "calls": calls})
    print_table(f"posterior mean by input depth ({args.model or 'the bundled model enhance picks'})",
                ["set", "depth", "model", "bin centre", "mean", "gain", "lmmse", "gain", "calls"],
                [[r["set"], str(r["depth"]), r["model"], f"{r['bin_centre_db']:.2f}", f"{r['mean_db']:.2f}",
                  f"{r['mean_db'] - r['bin_centre_db']:+.2f}", f"{r['lmmse_db']:.2f}",
                  f"{r['lmmse_db'] - r['bin_centre_db']:+.2f}", str(r["calls"])] for r in rows])
    write_json(args.out, torch.device("cpu"), rows, model=str(args.model or "bundled"))


if __name__ == "__main__":
    main()
