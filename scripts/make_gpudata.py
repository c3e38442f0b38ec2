"""Make .gpudata/: FLAC copies of random subsets of the corpus (small enough to carry to a lent GPU).

    python scripts/make_gpudata.py --corpus ~/.cache/upscale-audio-corpus/corpus
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import soundfile as sf

PLAN = [("speech_16k/train", 20 * 60), ("speech_8k/train", 18 * 60), ("music_44k/train", 9 * 60),
        ("speech_16k/heldout", 3 * 60), ("music_44k/heldout", 60), ("speech_8k/heldout", 2 * 60)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path(".gpudata"))
    args = ap.parse_args()
    random.seed(0)
    for sub, seconds in PLAN:
        files = sorted((args.corpus / sub).glob("*.wav"))
        random.shuffle(files)
        out = args.out / sub
        out.mkdir(parents=True, exist_ok=True)
        total = 0.0
        for f in files:
            if total >= seconds:
                break
            x, rate = sf.read(f, dtype="int16")
            total += len(x) / rate
            sf.write(out / (f.stem + ".flac"), x, rate, subtype="PCM_16")
        print(sub, f"{total:.0f} s")


if __name__ == "__main__":
    main()
