"""How much can any estimate inside G.711's bins gain over its decoded value? Oracle bounds.

Held-out recordings are coded to mu-law or A-law (``intervals.g711_encode``); every sample is then
estimated as the mean of a Gaussian (or, `--shape t3`, a Student-t) truncated to its bin, centred on a linear interpolator
from the sample's ``--taps`` neighbours on each side, fitted by least squares on blocks of
``--block`` samples *of the original* (an oracle: it knows the signal's local statistics), with the
local scale of its true residual (65-sample RMS). Two oracles:

* ``true neighbours``: the interpolator reads the original neighbours, as if every other sample were
  already restored perfectly (what a joint estimate could approach at best);
* ``decoded neighbours``: it reads the G.711 decoded neighbours (what one call at t = 0, which sees
  only the bins around a sample, could reach with a linear-Gaussian model).

SNR gains in dB against the decoded value; prints a table and writes JSON.

    python benchmarks/g711_bound.py --corpus $C --sets speech_8k speech_16k music_16k --taps 32 --block 1600 [--shape t3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from report import pick_files, print_table, write_json
from scipy.stats import norm

from upscale_audio import classical, intervals


def neighbours(x: np.ndarray, taps: int) -> np.ndarray:
    """x [T] -> [T, 2 taps]: x[n - taps .. n - 1] and x[n + 1 .. n + taps] (circular at the ends)."""
    return np.stack([np.roll(x, k) for k in [*range(-taps, 0), *range(1, taps + 1)]], 1)


def truncated_mean(mu: np.ndarray, sigma: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of N(mu, sigma^2) restricted to [lo, hi] (the bin's centre where it has no mass)."""
    a, b = (lo - mu) / sigma, (hi - mu) / sigma
    mass = norm.cdf(b) - norm.cdf(a)
    out = mu + sigma * (norm.pdf(a) - norm.pdf(b)) / np.maximum(mass, 1e-300)
    empty = mass < 1e-12
    out[empty] = np.clip(mu[empty], lo[empty], hi[empty])
    return np.clip(out, lo, hi)


def oracle(x: np.ndarray, seen: np.ndarray, lo: np.ndarray, hi: np.ndarray, taps: int, block: int,
           shape: str = "gauss") -> np.ndarray:
    """Truncated estimate of x [T] from the neighbours in ``seen`` [T], fitted on x: a Gaussian
    (``shape`` "gauss") or the heavier-tailed Student-t of 3 degrees of freedom ("t3", what
    ``classical.py`` uses), with the same standard deviation."""
    X = neighbours(seen, taps)
    pred = np.zeros_like(x)
    for b0 in range(0, len(x), block):
        sl = slice(b0, b0 + block)
        w, *_ = np.linalg.lstsq(X[sl], x[sl], rcond=None)
        pred[sl] = X[sl] @ w
    sigma = np.sqrt(np.convolve((x - pred) ** 2, np.ones(65) / 65, "same") + 1.0)
    if shape == "t3":
        return classical.truncated_mean(pred, sigma, lo, hi)
    return truncated_mean(pred, sigma, lo, hi)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--sets", nargs="+", default=["speech_8k", "speech_16k", "music_16k"])
    ap.add_argument("--laws", nargs="+", default=list(intervals.LAWS))
    ap.add_argument("--seconds", type=float, default=30.0, help="held-out audio per set")
    ap.add_argument("--taps", type=int, default=32, help="neighbours on each side")
    ap.add_argument("--block", type=int, default=1600, help="samples per least-squares fit")
    ap.add_argument("--shape", choices=["gauss", "t3"], default="gauss", help="the distribution truncated to each bin")
    ap.add_argument("--out", type=Path, default=Path("bench-results/g711_bound.json"))
    args = ap.parse_args()
    rows = []
    for name in args.sets:
        files = pick_files(args.corpus / name / "heldout", args.seconds)
        for law in args.laws:
            energy = {"signal": 0.0, "decoded": 0.0, "true": 0.0, "decoded_nb": 0.0}
            for a in files:
                for u in a.u:
                    x = u.astype(np.float64) - 32768
                    codes = intervals.g711_encode(u, law)
                    lo, hi = intervals.g711(codes, law)
                    lo_f, hi_f = lo - 32768.0, hi - 32768.0 - 1e-9
                    dec = intervals.decoded(law)[codes].astype(np.float64) - 32768
                    energy["signal"] += float(np.sum(x**2))
                    energy["decoded"] += float(np.sum((x - dec) ** 2))
                    energy["true"] += float(np.sum((x - oracle(x, x, lo_f, hi_f, args.taps, args.block, args.shape)) ** 2))
                    energy["decoded_nb"] += float(np.sum((x - oracle(x, dec, lo_f, hi_f, args.taps, args.block, args.shape)) ** 2))
            snr = {k: 10 * np.log10(energy["signal"] / energy[k]) for k in ("decoded", "true", "decoded_nb")}
            rows.append({"set": name, "law": law, "seconds": sum(a.frames / a.rate for a in files),
                         "decoded_snr_db": snr["decoded"], "gain_true_neighbours_db": snr["true"] - snr["decoded"],
                         "gain_decoded_neighbours_db": snr["decoded_nb"] - snr["decoded"]})
            print(rows[-1], flush=True)
    print_table(f"Oracle gains over G.711's decoded value ({args.taps} taps a side, fits on {args.block} samples, "
                f"{args.shape}):",
                ["set", "law", "decoded SNR dB", "oracle, true neighbours", "oracle, decoded neighbours"],
                [[r["set"], r["law"], f"{r['decoded_snr_db']:.2f}", f"{r['gain_true_neighbours_db']:+.2f}",
                  f"{r['gain_decoded_neighbours_db']:+.2f}"] for r in rows])
    write_json(args.out, torch.device("cpu"), rows, taps=args.taps, block=args.block, shape=args.shape)


if __name__ == "__main__":
    main()
