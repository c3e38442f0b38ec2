"""Held-out likelihood of models per set, beside the classical anchors: the gap the campaign closes.

For each set, ``report.pick_files`` takes ``--seconds`` of held-out audio; each model is scored by the
stochastic ELBO (``bits_per_sample``, ``--passes`` draws, standard error over passes) on all 16 bits
and on the low byte given the high byte; with ``--mean-snr``, also the SNR gain of ``enhance --mode mean``
over bin-centre on the 8-bit truncations of the same audio (what the low byte buys a user). The anchors (Sac, WavPack, FLAC on the whole splits) are in
../shared/anchors/README.md.

    python benchmarks/bench_gap.py --corpus $C --models shipped=bundled campaign=campaign/ft_elbo/latest.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from report import SETS, pick_files, print_table, snr_db, write_json

from upscale_audio import checkpoint, intervals
from upscale_audio.enhance import enhance_array
from upscale_audio.scoring import bits_per_sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--models", nargs="+", default=["shipped=bundled"], help="NAME=PATH (bundled: the shipped one)")
    ap.add_argument("--sets", nargs="+", default=list(SETS))
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--mean-snr", action="store_true", help="also the posterior mean's SNR gain on 8-bit input")
    ap.add_argument("--out", type=Path, default=Path("bench-results/gap.json"))
    args = ap.parse_args()
    models = {n: checkpoint.load(None if p == "bundled" else p) for n, p in (m.split("=", 1) for m in args.models)}
    rows = []
    for s in args.sets:
        files = pick_files(args.corpus / s / "heldout", args.seconds)
        items = [a.u for a in files]
        for name, ckpt in models.items():
            # a low-byte specialist (known_bits 8) has no all-16-bit figure
            full = bits_per_sample(items, ckpt, passes=args.passes) if ckpt.known_bits == 0 else None
            low = bits_per_sample(items, ckpt, given_bits=8, passes=args.passes)
            rows.append({"set": s, "model": name, "bpd_16": full.bits_per_sample if full else None,
                         "stderr_16": full.stderr if full else None,
                         "bpd_low_byte": low.bits_per_sample, "stderr_low_byte": low.stderr})
            if args.mean_snr:  # the gain in dB over bin-centre, pooled over the files' samples
                ref = np.concatenate([a.u.ravel() for a in files])
                centre = np.concatenate([intervals.restore_simple(*intervals.linear(a.u, 8), "bin-centre").ravel()
                                         for a in files])
                mean = np.concatenate([enhance_array(a.u, 8, ckpt, mode="mean", rate=a.rate).u.ravel() for a in files])
                rows[-1]["mean_gain_db"] = snr_db(ref, mean) - snr_db(ref, centre)
            print(rows[-1], flush=True)
    print_table(f"Held-out bits per sample ({args.seconds:.0f} s per set, {args.passes} ELBO passes)",
                ["set", "model", "all 16 bits", "low byte"] + (["mean vs bin-centre (dB)"] if args.mean_snr else []),
                [[r["set"], r["model"], "-" if r["bpd_16"] is None else f"{r['bpd_16']:.3f} ± {r['stderr_16']:.3f}",
                  f"{r['bpd_low_byte']:.3f} ± {r['stderr_low_byte']:.3f}"]
                 + ([f"{r['mean_gain_db']:+.2f}"] if args.mean_snr else []) for r in rows])
    write_json(args.out, torch.device("cpu"), rows, seconds=args.seconds, passes=args.passes)


if __name__ == "__main__":
    main()
