"""Where the posterior mean gains or loses against G.711's decoded value: held-out speech_8k coded
to mu-law or A-law (intervals.g711_encode), restored with ``--mode mean``, error energy per bin
width (relative to the signal energy) for the decoded value and the mean, and their ratio; and where
in its bin each lands on average (0: the edge nearer zero, 1: the far edge), which separates a
biased mean from a noisy one. The last columns split each width by whether its bin crosses a
high-byte boundary (a multiple of 256): there the all-16-bit model's mean is taken at the high-byte
stage, from the two allowed high digits' probabilities.

    python benchmarks/g711_error_by_width.py --corpus $C --law ulaw --seconds 15 [--model M.pt]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from report import pick_files

from upscale_audio import checkpoint, intervals
from upscale_audio.enhance import enhance_intervals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--law", choices=["ulaw", "alaw"], default="ulaw")
    ap.add_argument("--set", default="speech_8k")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--model", type=Path, default=None, help="default: the bundled all-16-bit model")
    args = ap.parse_args()
    ckpt = checkpoint.load(args.model)
    parts: dict[str, list[np.ndarray]] = {"ref": [], "dec": [], "mean": [], "width": [], "lo": []}
    for a in pick_files(args.corpus / args.set / "heldout", args.seconds):
        codes = intervals.g711_encode(a.u, args.law)
        lo, hi = intervals.g711(codes, args.law)
        parts["ref"].append(a.u.ravel())
        parts["dec"].append(intervals.decoded(args.law)[codes].ravel())
        parts["mean"].append(enhance_intervals(lo, hi, ckpt, mode="mean", rate=a.rate).u.ravel())
        parts["width"].append((hi - lo).ravel())
        parts["lo"].append(lo.ravel())
    ref, dec, mean, width, lo = (np.concatenate(parts[k]).astype(np.float64)
                                 for k in ("ref", "dec", "mean", "width", "lo"))
    toward_zero_edge = np.where(ref >= 32768, lo, lo + width - 1)  # offset binary: 32768 is zero

    def place(v: np.ndarray) -> np.ndarray:
        """Where v lies in its bin: 0 at the edge nearer zero, 1 at the far edge."""
        return np.abs(v - toward_zero_edge) / np.maximum(width - 1, 1)

    sig = np.sum((ref - 32768) ** 2)
    print(f"total: decoded {10 * np.log10(sig / np.sum((ref - dec) ** 2)):.2f} dB, "
          f"mean {10 * np.log10(sig / np.sum((ref - mean) ** 2)):.2f} dB")
    print("| bin width | share of samples | error energy, decoded (1e-4) | mean (1e-4) | ratio "
          "| place in bin: original / decoded / mean | crossing share | ratio: within / crossing "
          "| mean's place: within / crossing |")
    print("|---|---|---|---|---|---|---|---|---|")
    crossing = (lo.astype(np.int64) >> 8) != ((lo + width - 1).astype(np.int64) >> 8)

    def ratio(s: np.ndarray) -> str:
        return f"{np.sum((ref[s] - mean[s]) ** 2) / max(np.sum((ref[s] - dec[s]) ** 2), 1e-9):.3f}" if s.any() else "-"

    def mean_place(s: np.ndarray) -> str:
        return f"{place(mean)[s].mean():.3f}" if s.any() else "-"

    for w in np.unique(width):
        s = width == w
        ed, em = np.sum((ref[s] - dec[s]) ** 2), np.sum((ref[s] - mean[s]) ** 2)
        print(f"| {int(w)} | {100 * s.mean():.1f}% | {1e4 * ed / sig:.3f} | {1e4 * em / sig:.3f} | "
              f"{em / max(ed, 1e-9):.3f} | {place(ref)[s].mean():.3f} / {place(dec)[s].mean():.3f} / "
              f"{place(mean)[s].mean():.3f} | {100 * crossing[s].mean():.0f}% | {ratio(s & ~crossing)} / "
              f"{ratio(s & crossing)} | {mean_place(s & ~crossing)} / {mean_place(s & crossing)} |")


if __name__ == "__main__":
    main()
