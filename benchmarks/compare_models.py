"""Compare models on the same held-out files: bits per sample (low byte and all 16 bits; paired
ELBO draws) and the posterior-mean SNR of 8-bit truncations against bin-centre. Prints a table
and writes JSON.

    python benchmarks/compare_models.py --corpus $C --models old.pt upscale_audio/models/default.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from report import SETS, pick_files, snr_db

from upscale_audio import checkpoint
from upscale_audio.enhance import enhance_array, restore_simple
from upscale_audio.scoring import bits_per_sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--models", type=Path, nargs="+", required=True)
    ap.add_argument("--sets", nargs="+", default=list(SETS))
    ap.add_argument("--bpd-seconds", type=float, default=20.0, help="held-out audio per set for bpd")
    ap.add_argument("--snr-seconds", type=float, default=0.0,
                    help="held-out audio per set for the SNR (0: the whole held-out split)")
    ap.add_argument("--out", type=Path, default=Path("bench-results/compare_models.json"))
    args = ap.parse_args()
    lms = {str(m): checkpoint.load(m) for m in args.models}
    rows = []
    for s in args.sets:
        held = args.corpus / s / "heldout"
        items = [a.u for a in pick_files(held, args.bpd_seconds)]
        snr_files = pick_files(held, args.snr_seconds)
        ref = np.concatenate([a.u.ravel() for a in snr_files])
        bc = snr_db(ref, np.concatenate([restore_simple(a.u, 8, "bin-centre").ravel() for a in snr_files]))
        for name, ckpt in lms.items():
            row = {"set": s, "model": name, "bin_centre_db": bc}
            for gb in (8, 0):  # same seed for every model: paired draws of (t, order)
                if gb < ckpt.known_bits:  # a low-byte specialist has no all-16-bit figure
                    row[f"bpd_given_{gb}"] = row[f"stderr_given_{gb}"] = float("nan")
                    continue
                r = bits_per_sample(items, ckpt, given_bits=gb, passes=2)
                row[f"bpd_given_{gb}"], row[f"stderr_given_{gb}"] = r.bits_per_sample, r.stderr
            out = [enhance_array(a.u, 8, ckpt, mode="mean", rate=a.rate).u.ravel() for a in snr_files]
            row["mean_db"] = snr_db(ref, np.concatenate(out))
            rows.append(row)
            print(f"{s} {name}: low byte {row['bpd_given_8']:.3f} +- {row['stderr_given_8']:.3f}, "
                  f"16 bits {row['bpd_given_0']:.3f} +- {row['stderr_given_0']:.3f}, mean {row['mean_db']:.2f} dB "
                  f"(bin-centre {bc:.2f}, {row['mean_db'] - bc:+.2f})", flush=True)
    print("\n| set | model | low byte bpd | 16-bit bpd | mean SNR | over bin-centre |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | {Path(str(r['model'])).name} | {r['bpd_given_8']:.3f} ± {r['stderr_given_8']:.3f} | "
              f"{r['bpd_given_0']:.3f} ± {r['stderr_given_0']:.3f} | {r['mean_db']:.2f} dB | "
              f"{r['mean_db'] - r['bin_centre_db']:+.2f} dB |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
