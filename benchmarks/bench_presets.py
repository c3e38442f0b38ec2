"""Codec presets against FLAC, WavPack and Sac: size and speed, whole processes on the same files.

For each held-out set, files are picked (``report.pick_files``) up to ``--seconds`` of audio and
copied into a folder. Each ``.uad`` preset is timed as a user runs it: one ``upscale-audio compress``
process over the folder (start-up included), then one ``decompress``; every file is compared sample
for sample. The classical coders run one process per file (they start in milliseconds); their
times are summed. Sizes are whole files, headers included: bits per sample = 8 x bytes / samples.

    python benchmarks/bench_presets.py --corpus $C --sets speech_16k music_16k --seconds 20 \\
        --sac ~/.cache/sac/sac --out bench-results/presets.json

Speed is x real time (seconds of audio / wall seconds), the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
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

from upscale_audio import codec

CLASSICAL = {  # name: (encode argv, decode argv, suffix)
    "FLAC -8": (["flac", "-8", "--no-padding", "--no-seektable", "-f", "-s", "-o", "{o}", "{i}"],
                ["flac", "-d", "-f", "-s", "-o", "{o}", "{i}"], ".flac"),
    "WavPack -hhx6": (["wavpack", "-hhx6", "-q", "-y", "{i}", "-o", "{o}"], ["wvunpack", "-q", "-y", "{i}", "-o", "{o}"],
                      ".wv"),
    "Sac --normal": (["{sac}", "--encode", "--normal", "{i}", "{o}"], ["{sac}", "--decode", "{i}", "{o}"], ".sac"),
}


def run(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def same_audio(a: Path, b: Path) -> bool:
    x, y = sf.read(str(a), dtype="int32", always_2d=True)[0], sf.read(str(b), dtype="int32", always_2d=True)[0]
    return x.shape == y.shape and bool(np.array_equal(x, y))


def uad_preset(files: list[Path], work: Path, preset: str, repeats: int) -> dict[str, float]:
    enc, dec = [], []
    uads = work / f"uad_{preset}"
    back = work / f"back_{preset}"
    exe = [sys.executable, "-m", "upscale_audio"]
    for _ in range(repeats):
        shutil.rmtree(uads, ignore_errors=True)
        shutil.rmtree(back, ignore_errors=True)
        enc.append(run(exe + ["compress", str(work / "in"), "-o", str(uads), "--preset", preset, "-q"]))
        dec.append(run(exe + ["decompress", str(uads), "-o", str(back), "-q"]))
    size = 0
    for f in files:
        size += (uads / f.with_suffix(codec.SUFFIX).name).stat().st_size
        if not same_audio(f, back / f.with_suffix(".wav").name):
            raise SystemExit(f"round trip FAILED on {f} with --preset {preset}")
    return {"bytes": size, "encode_s": statistics.median(enc), "decode_s": statistics.median(dec)}


def classical(files: list[Path], work: Path, name: str, sac: str | None, repeats: int) -> dict[str, float] | None:
    enc_argv, dec_argv, suffix = CLASSICAL[name]
    exe = sac if "{sac}" in enc_argv else enc_argv[0]
    if exe is None or not shutil.which(exe):
        return None
    enc, dec, size = [], [], 0
    for _ in range(repeats):
        e = d = 0.0
        size = 0
        for f in files:
            coded, back = work / (f.stem + suffix), work / (f.stem + ".back.wav")

            def sub(argv: list[str], i: Path, o: Path) -> list[str]:
                return [a.replace("{i}", str(i)).replace("{o}", str(o)).replace("{sac}", sac or "") for a in argv]

            e += run(sub(enc_argv, f, coded))
            d += run(sub(dec_argv, coded, back))
            size += coded.stat().st_size
            if not same_audio(f, back):
                raise SystemExit(f"{name} round trip failed on {f}")
            coded.unlink()
            back.unlink()
        enc.append(e)
        dec.append(d)
    return {"bytes": size, "encode_s": statistics.median(enc), "decode_s": statistics.median(dec)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--sets", nargs="+", default=["speech_16k", "music_16k"])
    ap.add_argument("--seconds", type=float, default=20.0, help="audio per set")
    ap.add_argument("--presets", nargs="*", default=list(codec.PRESETS))
    ap.add_argument("--classical", nargs="*", default=list(CLASSICAL), help="classical coders to run")
    ap.add_argument("--best-seconds", type=float, default=0.0, help="less audio for the slow best preset (0: same)")
    ap.add_argument("--sac", default=None, help="path of a Sac binary (anchors/sac/build.sh), optional")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench-results/presets.json"))
    args = ap.parse_args()
    rows = []
    for s in args.sets:
        folder = args.corpus / s / "heldout"
        if not folder.is_dir():
            continue
        picked = pick_files(folder, args.seconds)
        for name in list(args.presets) + list(args.classical):
            seconds = args.best_seconds if name == "best" and args.best_seconds else args.seconds
            chosen = [a for a in picked if sum(b.frames / b.rate for b in picked[: picked.index(a)]) < seconds]
            if name == "best" and args.best_seconds:  # the slow preset on a prefix of the same audio
                chosen = [chosen[0]]
            with tempfile.TemporaryDirectory() as td:
                work = Path(td)
                (work / "in").mkdir()
                files = []
                for a in chosen:
                    dst = work / "in" / a.path.name
                    if name == "best" and args.best_seconds:
                        assert a.samples is not None
                        sf.write(dst, a.samples[:, : int(seconds * a.rate)].T, a.rate, subtype="PCM_16")
                    else:
                        shutil.copy(a.path, dst)
                    files.append(dst)
                frames = [min(a.frames, int(seconds * a.rate)) if name == "best" and args.best_seconds else a.frames
                          for a in chosen]
                samples = sum(f * a.channels for f, a in zip(frames, chosen))
                audio_s = sum(f / a.rate for f, a in zip(frames, chosen))
                if name in codec.PRESETS:
                    r = uad_preset(files, work, name, args.repeats)
                    label = f".uad {name} (K={codec.PRESETS[name]})"
                else:
                    got = classical(files, work, name, args.sac, args.repeats)
                    if got is None:
                        continue
                    r, label = got, name
            row = {"set": s, "coder": label, "files": len(files), "seconds_audio": audio_s, "samples": samples, **r,
                   "bps": 8 * r["bytes"] / samples, "encode_rt": audio_s / r["encode_s"],
                   "decode_rt": audio_s / r["decode_s"]}
            rows.append(row)
            print(f"{s} {label}: {row['bps']:.3f} bits/sample, encode {row['encode_rt']:.2f}x, "
                  f"decode {row['decode_rt']:.2f}x ({audio_s:.1f} s of audio)", flush=True)
    threads = os.environ.get("OMP_NUM_THREADS", str(torch.get_num_threads()))
    print_table(f"Codec presets against classical coders: whole processes, held-out files, {threads} threads "
                "(bits per sample, headers included; x real time, start-up included)",
                ["set", "coder", "audio s", "bits/sample", "encode", "decode"],
                [[r["set"], r["coder"], f"{r['seconds_audio']:.1f}", f"{r['bps']:.3f}", f"{r['encode_rt']:.2f}x",
                  f"{r['decode_rt']:.2f}x"] for r in rows])
    write_json(args.out, torch.device("cpu"), rows, seconds=args.seconds, repeats=args.repeats)


if __name__ == "__main__":
    main()
