"""G.711 restore benchmark: held-out recordings coded to mu-law and A-law, restored to 16 bits.

For each set and law: the codes come from sox (its default, dithered conversion, as a user makes
them) or, without sox, from libsndfile; the table gives the SNR against the 16-bit original of
G.711's own decoded value, of the bin centre, of the model's posterior mean, of the classical
estimate (``--method lmmse``), of the classical estimate with its learned correction
(``correction.py``: what ``enhance --mode mean`` writes for G.711 with the bundled models) and of
a blend of the two (``--blend`` of the network's mean, the rest lmmse: the comparison that
left the network out of the G.711 mean), and checks that re-encoding every restored file
(libsndfile's and sox's encoders, no dither) gives the input codes back. The model defaults to the
bundled interval model (what ``enhance`` picks for G.711). Prints a table and writes JSON.

    python benchmarks/bench_g711.py --corpus ~/.cache/upscale-audio-corpus/corpus [--model M.pt] [--bpd-passes 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from report import pick_files, print_table, write_json

from upscale_audio import checkpoint, classical, correction, intervals, metrics
from upscale_audio.enhance import enhance_intervals
from upscale_audio.scoring import bits_per_sample


def g711_codes(path: Path, u: np.ndarray, law: str) -> np.ndarray:
    """The codes a user gets for a mono file: sox's (dithered) if sox is here, else libsndfile's."""
    if shutil.which("sox") is None:
        return intervals.g711_encode(u, law)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "x.raw"
        subprocess.run(["sox", str(path), "-e", "mu-law" if law == "ulaw" else "a-law", "-t", "raw", str(out)],
                       check=True, stderr=subprocess.DEVNULL)
        return np.fromfile(out, dtype=np.uint8)[None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--sets", nargs="+", default=["speech_8k", "speech_16k", "music_16k"])
    ap.add_argument("--laws", nargs="+", default=list(intervals.LAWS))
    ap.add_argument("--seconds", type=float, default=0.0, help="held-out audio per set (0: the whole split)")
    ap.add_argument("--blend", type=float, default=0.2, help="the network's share in the blend column")
    ap.add_argument("--bpd-passes", type=int, default=0,
                    help="also score what each law leaves open (bpd --given LAW: libsndfile's bins, a partition; "
                         "this many ELBO passes) beside a uniform distribution inside those bins (0: skip)")
    ap.add_argument("--no-network", action="store_true", help="the classical estimate only (no ardm and blend columns)")
    ap.add_argument("--correction", type=Path, default=None,
                    help="the correction weights for the default column (a candidate .npz, run at every rate; default: the shipped ones "
                         "at the rates they were trained on)")
    ap.add_argument("--out", type=Path, default=Path("bench-results/g711.json"))
    args = ap.parse_args()
    candidate = correction.load(args.correction) if args.correction else None
    ckpt = checkpoint.load(args.model or checkpoint.BUNDLED_INTERVALS)
    rows = []
    for s in args.sets:
        files = pick_files(args.corpus / s / "heldout", args.seconds)
        for law in args.laws:
            ref, dec, bc, mean, lmmse, mix, secs, audio_s, reenc_ok = [], [], [], [], [], [], 0.0, 0.0, True
            secs_lmmse, shipped, secs_shipped = 0.0, [], 0.0
            for a in files:
                codes = g711_codes(a.path, a.u, law)
                lo, hi = intervals.g711(codes, law)
                t0 = time.perf_counter()
                est = classical.interval_mean(lo, hi, a.rate)
                secs_lmmse += time.perf_counter() - t0
                t0 = time.perf_counter()
                corr = correction.for_rate(a.rate) if candidate is None else candidate
                fixed = classical.interval_mean(lo, hi, a.rate, corr=corr) if corr is not None else est
                secs_shipped += time.perf_counter() - t0
                t0 = time.perf_counter()
                out = est if args.no_network else enhance_intervals(lo, hi, ckpt, mode="mean", rate=a.rate).u
                secs += time.perf_counter() - t0
                both = np.floor(args.blend * out + (1 - args.blend) * est + 0.5).astype(np.int64)
                audio_s += a.frames / a.rate
                reenc_ok &= all(np.array_equal(enc[v], codes) for v in (out, est, both)
                                for enc in (intervals.libsndfile_codes(law), intervals.sox_codes(law)))
                lmmse.append(est.ravel() - 32768)
                shipped.append(fixed.ravel() - 32768)
                mix.append(both.ravel() - 32768)
                ref.append(a.u.ravel() - 32768)
                dec.append(intervals.decoded(law)[codes].ravel() - 32768)
                bc.append(intervals.restore_simple(lo, hi, "bin-centre").ravel() - 32768)
                mean.append(out.ravel() - 32768)
            r = np.concatenate(ref)
            row = {"set": s, "law": law, "files": len(files), "seconds": audio_s,
                   "decoded_db": metrics.snr_db(r, np.concatenate(dec)),
                   "bin_centre_db": metrics.snr_db(r, np.concatenate(bc)),
                   "mean_db": None if args.no_network else metrics.snr_db(r, np.concatenate(mean)),
                   "realtime": None if args.no_network else audio_s / max(secs, 1e-9),
                   "lmmse_db": metrics.snr_db(r, np.concatenate(lmmse)), "lmmse_realtime": audio_s / max(secs_lmmse, 1e-9),
                   "corrected_db": metrics.snr_db(r, np.concatenate(shipped)),
                   "corrected_realtime": audio_s / max(secs_shipped, 1e-9),
                   "blend_db": None if args.no_network else metrics.snr_db(r, np.concatenate(mix)),
                   "network_share_in_blend": args.blend, "taps": classical.TAPS, "window_s": classical.WINDOW_SECONDS,
                   "re_encodes_to_input": reenc_ok}
            if args.bpd_passes:
                res = bits_per_sample([a.u for a in files], ckpt, given_law=law, passes=args.bpd_passes)
                widths = np.concatenate([np.subtract(*intervals.g711_of_u(a.u, law)[::-1]).ravel() for a in files])
                row.update(bpd_given=res.bits_per_sample, bpd_given_stderr=res.stderr,
                           bpd_uniform_in_bins=float(np.mean(np.log2(widths))))
            rows.append(row)
            print(row, flush=True)
    print_table(f"G.711 restored with --mode mean ({ckpt.path.name if ckpt.path else 'bundled'}, sha {ckpt.sha256[:12]}); "
                "SNR dB against the 16-bit original:",
                ["set", "law", "files", "minutes", "G.711 decoded", "bin centre", "ardm mean (gain)", "lmmse (gain)",
                 "lmmse + correction: the default (gain)", f"blend {args.blend:.0%} ardm (gain)",
                 "x real time ardm / lmmse / default", "re-encodes to input"],
                [[r["set"], r["law"], str(r["files"]), f"{r['seconds'] / 60:.1f}", f"{r['decoded_db']:.2f}",
                  f"{r['bin_centre_db']:.2f}"]
                 + [f"{r[k]:.2f} ({r[k] - r['decoded_db']:+.2f})" if r[k] is not None else "-"
                    for k in ("mean_db", "lmmse_db", "corrected_db", "blend_db")]
                 + [" / ".join("-" if r[k] is None else format(r[k], ".1f")
                               for k in ("realtime", "lmmse_realtime", "corrected_realtime")),
                    "yes" if r["re_encodes_to_input"] else "NO"]
                 for r in rows])
    if args.bpd_passes:
        print_table("What G.711 leaves open, bits/sample (the model's ELBO; uniform inside each bin for reference):",
                    ["set", "law", "model", "uniform in bins"],
                    [[r["set"], r["law"], f"{r['bpd_given']:.3f} ± {r['bpd_given_stderr']:.3f}",
                      f"{r['bpd_uniform_in_bins']:.3f}"] for r in rows])
    write_json(args.out, torch.device("cpu"), rows, model=str(ckpt.path), model_sha256=ckpt.sha256,
               correction=str(args.correction) if args.correction else
               str(correction.BUNDLED) if correction.bundled() else None)


if __name__ == "__main__":
    main()
