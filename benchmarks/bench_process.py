"""Whole-process benchmark: the commands a user runs, timed end to end on a whole file.

A 60 s clip of held-out festvox speech (16 kHz mono, its 8-bit truncation) is restored by
``enhance --method bin-centre`` (no model: start-up and I/O), ``enhance`` (the default, the
posterior mean; the network under ONNX Runtime, without PyTorch), the same with ``--engine torch`` and
``enhance --mode sample`` (K calls per stage), and its 16-bit original is compressed and
decompressed; start-up with the model is ``enhance`` of a 1 s clip and ``info``; each command runs ``--repeats`` times in a fresh process. Reports the median wall
time, x real time and the ratio to bin-centre measured in the same run (this machine is shared and
noisy: quote ratios). Prints a table and writes JSON.

    python benchmarks/bench_process.py --corpus ~/.cache/upscale-audio-corpus/corpus [--model M.pt]

``--song``: instead, a 3-minute 44.1 kHz stereo "song" (held-out music_44k recordings end to end,
one stream per channel, looped if the split is shorter) for the restore commands only.

``--g711 ulaw|alaw``: instead, 60 s of held-out 8 kHz telephone speech written as a G.711 WAV, restored
by ``--method bin-centre``, ``--method lmmse`` (classical, no network), ``enhance`` (the default: for
G.711 the lmmse estimate) and the interval model's own mean (``--model``: what ``enhance`` ran before).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from report import pick_files, print_table, write_json

from upscale_audio import audio, checkpoint


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sample-steps", type=int, default=16)
    ap.add_argument("--slow-repeats", type=int, default=1, help="repeats of sample, compress and decompress")
    ap.add_argument("--skip", nargs="*", default=[], help="command names to leave out (e.g. sample compress)")
    ap.add_argument("--out", type=Path, default=Path("bench-results/process.json"))
    ap.add_argument("--song", action="store_true", help="a 3-minute 44.1 kHz stereo song, restore commands only")
    ap.add_argument("--g711", choices=["ulaw", "alaw"], default=None, help="8 kHz speech as G.711, restore commands only")
    args = ap.parse_args()
    if args.song:
        rate, n = 44100, 180 * 44100
        stream = np.concatenate([a.samples[0] for a in pick_files(args.corpus / "music_44k" / "heldout", 360.0)])
        x = np.resize(stream, 2 * n).reshape(2, n)
        args.skip = list(args.skip) + ["sample", "compress", "decompress", "info", "--help", "1 s clip"]
    elif args.g711:
        rate = 8000
        files = pick_files(args.corpus / "speech_8k" / "heldout", args.seconds)
        x = np.concatenate([a.samples for a in files], axis=1)[:, : int(args.seconds * rate)]
        args.skip = list(args.skip) + ["enhance --engine", "sample", "compress", "decompress", "info", "--help", "1 s clip"]
    else:
        rate = 16000
        files = pick_files(args.corpus / "speech_16k" / "heldout", args.seconds)
        x = np.concatenate([a.samples for a in files], axis=1)[:, : int(args.seconds * rate)]
    seconds = x.shape[1] / rate
    exe = [sys.executable, "-m", "upscale_audio"]
    model = ["--model", str(args.model)] if args.model else []
    rows = []
    with tempfile.TemporaryDirectory() as d:
        src16, src8 = Path(d) / "orig.wav", Path(d) / "clip8.wav"
        sf.write(src16, x.T, rate, subtype="PCM_16")
        if args.g711:  # the restores below read the G.711 file
            sf.write(src8, x.T, rate, subtype="ULAW" if args.g711 == "ulaw" else "ALAW")
        else:
            audio.write_u8(src8, x, rate)
        audio.write_u8(Path(d) / "one_second.wav", x[:, :rate], rate)
        commands = {
            "enhance --method bin-centre": exe + ["enhance", str(src8), "-o", f"{d}/bc.wav", "-f", "-q",
                                                  "--method", "bin-centre"],
            "enhance --method lmmse (classical, no network)": exe + ["enhance", str(src8), "-o", f"{d}/l.wav", "-f",
                                                                     "-q", "--method", "lmmse"],
            "enhance (default: mean)": exe + ["enhance", str(src8), "-o", f"{d}/m.wav", "-f", "-q", *model],
            "enhance --model intervals.pt (its mean alone)": exe + [
                "enhance", str(src8), "-o", f"{d}/n.wav", "-f", "-q", "--model", str(checkpoint.BUNDLED_INTERVALS)],
            "enhance --engine torch (mean, PyTorch only)": exe + ["enhance", str(src8), "-o", f"{d}/mt.wav", "-f",
                                                                  "-q", "--engine", "torch", *model],
            f"enhance --mode sample (K={args.sample_steps})": exe + [
                "enhance", str(src8), "-o", f"{d}/s.wav", "-f", "-q", "--mode", "sample", "--steps",
                str(args.sample_steps), *model],
            "compress --preset fast": exe + ["compress", str(src16), "-o", f"{d}/f.uad", "-f", "-q", "--preset",
                                             "fast", *model],
            "compress (default preset)": exe + ["compress", str(src16), "-o", f"{d}/c.uad", "-f", "-q", *model],
            "decompress (default preset)": exe + ["decompress", f"{d}/c.uad", "-o", f"{d}/c.wav", "-f", "-q", *model],
            "enhance, 1 s clip (start-up with the model)": exe + ["enhance", f"{d}/one_second.wav", "-o",
                                                                  f"{d}/one.wav", "-f", "-q", *model],
            "info (the model card)": exe + ["info", *model],
            "--help (start-up, no model)": exe + ["--help"],
        }
        base = None
        for name, cmd in commands.items():
            if any(name.startswith(s) or s in name for s in args.skip):
                continue
            if not args.g711 and ("lmmse" in name or "intervals.pt" in name):
                continue
            slow = name.startswith(("enhance --mode sample", "compress", "decompress"))
            walls = [timed(cmd) for _ in range(args.slow_repeats if slow else args.repeats)]
            med = statistics.median(walls)
            base = med if base is None else base
            rows.append({"command": name, "median_s": med, "runs": walls, "x_real_time": seconds / med,
                         "ratio_to_bin_centre": med / base})
            print(rows[-1], flush=True)
    what = "a 44.1 kHz stereo song" if args.song else f"8 kHz speech, G.711 {args.g711}" if args.g711 else "16 kHz speech"
    print_table(f"Whole process on {seconds:.0f} s of {what}, median of {args.repeats} runs "
                f"({torch.get_num_threads()} threads):",
                ["command", "median wall s", "x real time", "x bin-centre's time"],
                [[r["command"], f"{r['median_s']:.2f}", f"{r['x_real_time']:.2f}", f"{r['ratio_to_bin_centre']:.1f}"]
                 for r in rows])
    write_json(args.out, torch.device("cpu"), rows, seconds=seconds, rate=rate, channels=int(x.shape[0]),
               model=str(args.model or "bundled"))


if __name__ == "__main__":
    main()
