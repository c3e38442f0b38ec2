"""Classical lossless baselines per held-out set: FLAC -8 and WavPack -hhx6 of the 16-bit files and
of their 8-bit truncations (top byte kept, low byte zero). Their difference is what a classical
codec spends on the low byte given the high byte: the figure the model's ``bpd --given-bits 8``
must beat. Needs the ``flac`` and ``wavpack`` programs (Debian packages of the same names).

    python benchmarks/bench_codecs.py --corpus ~/.cache/upscale-audio-corpus/corpus --out bench-results/codecs.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from report import print_table

from upscale_audio import audio, bits

CODECS = {
    "flac -8": ["flac", "-s", "-f", "-8", "--no-padding", "--no-seektable", "-o", "{o}", "{i}"],
    "wavpack -hhx6": ["wavpack", "-q", "-y", "-hhx6", "{i}", "-o", "{o}"],
}


def size(codec: str, wav: Path, tmp: Path) -> int:
    out = tmp / (wav.name + (".flac" if codec.startswith("flac") else ".wv"))
    subprocess.run([a.replace("{i}", str(wav)).replace("{o}", str(out)) for a in CODECS[codec]], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    n = out.stat().st_size
    out.unlink()
    return n


def set_figures(folder: Path, tmp: Path) -> dict[str, float]:
    files = [f for f, _ in audio.find_audio([folder])]
    jobs, samples = [], 0
    for i, f in enumerate(files):
        a = audio.read(f)
        if a.samples is None:
            continue
        samples += a.samples.size
        trunc = (bits.keep_top_bits(a.u, 8) - 32768).astype(np.int16)
        p16, p8 = tmp / f"{i}_16.wav", tmp / f"{i}_8.wav"
        sf.write(p16, a.samples.T, a.rate, subtype="PCM_16")
        sf.write(p8, trunc.T, a.rate, subtype="PCM_16")
        jobs += [(c, p16, "16") for c in CODECS] + [(c, p8, "8") for c in CODECS]
    totals: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        for (c, _, kind), n in zip(jobs, ex.map(lambda j: size(j[0], j[1], tmp), jobs)):
            totals[f"{c} {kind}"] = totals.get(f"{c} {kind}", 0) + n
    out: dict[str, float] = {"files": len(files), "samples": samples}
    for c in CODECS:
        b16, b8 = 8 * totals[f"{c} 16"] / samples, 8 * totals[f"{c} 8"] / samples
        out.update({f"{c} 16-bit": b16, f"{c} 8-bit": b8, f"{c} low byte": b16 - b8})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--sets", nargs="+", default=["speech_16k", "speech_8k", "music_44k", "music_16k"])
    ap.add_argument("--out", type=Path, default=Path("bench-results/codecs.json"))
    args = ap.parse_args()
    missing = [p for p in ("flac", "wavpack") if not shutil.which(p)]
    if missing:
        sys.exit(f"error: {' and '.join(missing)} not found; install the Debian package(s) {' '.join(missing)}")
    rows = {}
    for s in args.sets:
        if (args.corpus / s / "heldout").is_dir():
            with tempfile.TemporaryDirectory() as td:
                rows[s] = set_figures(args.corpus / s / "heldout", Path(td))
    cols = ["flac -8 16-bit", "flac -8 8-bit", "flac -8 low byte", "wavpack -hhx6 16-bit", "wavpack -hhx6 8-bit",
            "wavpack -hhx6 low byte"]
    print_table("Classical codecs on held-out files, bits per sample (per-file sizes, headers counted):",
                ["set"] + cols, [[s] + [f"{r[c]:.2f}" for c in cols] for s, r in rows.items()])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
