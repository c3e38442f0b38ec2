"""Restore benchmark: 8-bit truncations of held-out recordings restored to 16 bits.

For each corpus set: SNR against the original 16-bit file and speed (x real time on this machine)
for ``zero``, ``bin-centre``, the count-table posterior mean E[lo | hi] (a 256 x 256 table fitted
on the set's training split), ``ardm --mode mean`` and ``ardm --mode sample`` at several budgets.
Also low-byte and full bits per sample of the model against FLAC/WavPack figures from the corpus
baselines, and a spectrogram PNG of one clip. Prints tables and writes JSON.

    python benchmarks/bench_enhance.py --corpus ~/.cache/upscale-audio-corpus/corpus [--model M.pt]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from report import SETS, pick_files, snr_db

from upscale_audio import audio, checkpoint
from upscale_audio.enhance import enhance_array, restore_simple
from upscale_audio.scoring import bits_per_sample


def count_table_mean(train: Path, max_files: int = 400) -> np.ndarray:
    """E[lo | hi] for each high byte from the training split (add-0.5 smoothing) -> float [256]."""
    counts = np.full((256, 256), 0.5)
    for f, _ in audio.find_audio([train])[:max_files]:
        a = audio.read(f)
        if a.samples is not None:
            u = a.u.ravel()
            np.add.at(counts, (u >> 8, u & 255), 1)
    return (counts * np.arange(256)).sum(1) / counts.sum(1)


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def spectrogram_png(path: Path, clips: dict[str, np.ndarray], rate: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(clips), 1, figsize=(9, 2.1 * len(clips)), sharex=True)
    for ax, (name, u) in zip(axes, clips.items()):
        x = (u.astype(np.float64) - 32768) / 32768
        ax.specgram(x, NFFT=512, Fs=rate, noverlap=384, cmap="magma", vmin=-160, vmax=-20)
        ax.set_ylabel("Hz")
        ax.set_title(name, fontsize=9, loc="left")
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=None, help="checkpoint (default: the bundled model)")
    ap.add_argument("--sets", nargs="+", default=list(SETS))
    ap.add_argument("--seconds", type=float, default=0.0,
                    help="held-out audio per set for SNR/speed (0: the whole held-out split)")
    ap.add_argument("--sample-seconds", type=float, default=2.0, help="audio per set for --mode sample")
    ap.add_argument("--budgets", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--bpd-seconds", type=float, default=20.0, help="held-out audio per set for bpd")
    ap.add_argument("--out", type=Path, default=Path("bench-results/enhance.json"))
    ap.add_argument("--png", type=Path, default=None, help="write a spectrogram of one clip here (e.g. docs/spectrogram.png)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    ckpt = checkpoint.load(args.model)
    dev = torch.device("cpu")
    baselines = {}
    bl = args.corpus / "baselines.tsv"
    if bl.is_file():
        for r in csv.DictReader(open(bl), delimiter="\t"):
            baselines[r["set"]] = r
    # warm-up: numba compiles its kernels on first use (cached on disk afterwards); time steady state
    warm = np.full((1, 4000), 32768, dtype=np.int64)
    for mode in ("mean", "sample"):
        enhance_array(warm, 8, ckpt, mode=mode, steps=1, device=dev)
    results = []
    for s in args.sets:
        held, train = args.corpus / s / "heldout", args.corpus / s / "train"
        if not held.is_dir():
            continue
        files = pick_files(held, args.seconds)
        rate = files[0].rate
        secs = sum(a.frames / a.rate for a in files)
        refs = [a.u for a in files]
        table = count_table_mean(train)
        row: dict[str, object] = {"set": s, "rate": rate, "seconds": secs, "files": len(files)}

        def run_all(fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
            outs, t = timed(lambda: [fn(u) for u in refs])
            return snr_db(np.concatenate([u.ravel() for u in refs]), np.concatenate([o.ravel() for o in outs])), t

        for name, fn in [
            ("zero", lambda u: restore_simple(u, 8, "zero")),
            ("bin-centre", lambda u: restore_simple(u, 8, "bin-centre")),
            ("count-table", lambda u: ((u >> 8) << 8) + np.floor(table[u >> 8] + 0.5).astype(np.int64)),
            ("ardm mean", lambda u: enhance_array(u, 8, ckpt, mode="mean", device=dev, rate=rate).u),
        ]:
            snr, t = run_all(fn)
            row[name] = {"snr_db": snr, "x_real_time": secs / t}
        # sampling is slower: a shorter excerpt of the same files
        short = [u[:, : int(args.sample_seconds * rate)] for u in refs[:3]]
        ssecs = sum(u.shape[1] for u in short) / rate
        ref_short = np.concatenate([u.ravel() for u in short])
        for K in args.budgets:
            outs, t = timed(lambda K=K: [enhance_array(u, 8, ckpt, mode="sample", steps=K, device=dev, rate=rate).u
                                         for u in short])
            row[f"ardm sample K={K}"] = {"snr_db": snr_db(ref_short, np.concatenate([o.ravel() for o in outs])),
                                         "x_real_time": ssecs / t, "seconds": ssecs}
        bfiles = pick_files(held, args.bpd_seconds)
        for gb in (8, 0) if ckpt.known_bits == 0 else (ckpt.known_bits,):
            r = bits_per_sample([a.u for a in bfiles], ckpt, given_bits=gb, passes=2, device=dev)
            row[f"bpd given {gb}"] = {"bits": r.bits_per_sample, "stderr": r.stderr, "samples": r.samples}
        if s in baselines:
            b = baselines[s]
            row["baselines"] = {k: float(b[k]) for k in ("flac -8 per-file", "wavpack -hhx6 per-file",
                                                         "snr_zero", "snr_mid", "CE_lo_given_hi_trainfit")}
        results.append(row)
        print(json.dumps(row))
        if s == args.sets[0] and args.png is not None:
            u = refs[0][:, : int(4 * rate)]
            spectrogram_png(args.png, {
                "original 16-bit": u[0], "8-bit (zero low byte)": restore_simple(u, 8, "zero")[0],
                "bin-centre": restore_simple(u, 8, "bin-centre")[0],
                "ARDM posterior mean": enhance_array(u, 8, ckpt, mode="mean", rate=rate).u[0],
                "ARDM sample (default K)": enhance_array(u, 8, ckpt, rate=rate).u[0]}, rate)

    cpu = f"{platform.machine()}, {torch.get_num_threads()} threads"
    methods = ["zero", "bin-centre", "count-table", "ardm mean"] + [f"ardm sample K={K}" for K in args.budgets]
    print(f"\nRestore 8-bit -> 16-bit on held-out audio; model {ckpt.path.name if ckpt.path else '?'} "
          f"(sha256 {ckpt.sha256[:12]}); speed on {cpu}. SNR in dB (x real time):\n")
    print("| set | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for r in results:
        cells = [f"{r[m]['snr_db']:.2f} ({r[m]['x_real_time']:.1f}x)" for m in methods]  # type: ignore[index]
        print(f"| {r['set']} | " + " | ".join(cells) + " |")
    print("\nBits per sample on held-out audio (model: ELBO, 2 passes; codecs: per-file sizes from the corpus):\n")
    print("| set | low byte (model) | low byte CE count-table | full 16 bits (model) | FLAC -8 | WavPack -hhx6 |")
    print("|---|---|---|---|---|---|")
    for r in results:
        b = r.get("baselines", {})
        lo = r.get("bpd given 8", {})
        full = r.get("bpd given 0", {})
        print(f"| {r['set']} | {lo.get('bits', float('nan')):.3f} | {b.get('CE_lo_given_hi_trainfit', float('nan')):.2f}"  # type: ignore[union-attr]
              f" | {full.get('bits', float('nan')):.3f} | {b.get('flac -8 per-file', float('nan')):.2f} | "  # type: ignore[union-attr]
              f"{b.get('wavpack -hhx6 per-file', float('nan')):.2f} |")  # type: ignore[union-attr]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": str(ckpt.path), "sha256": ckpt.sha256, "cpu": cpu,
                                    "torch": torch.__version__, "results": results}, indent=1))


if __name__ == "__main__":
    main()
