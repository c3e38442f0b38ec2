"""Rebuild samples/ from the corpus (see samples/PROVENANCE.md).

    python scripts/make_samples.py --corpus ~/.cache/upscale-audio-corpus
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from upscale_audio import audio

CLIPS = {
    "speech_ru_16k": "corpus/speech_16k/heldout/festvox_ru__festvox-ru_usr_share_festival_voices_russian_msu_ru_nsh_"
                     "clunits_wav_ru_0683.wav",
    "speech_en_8k": "corpus/speech_8k/heldout/asterisk_en__asterisk-core-sounds-en-wav_usr_share_asterisk_sounds_en_"
                    "US_f_Allison_confbridge-dec-list-vol-out.wav",
}
ORGAN = "build/x/_grandorgue/Bourdon8/054-F#.wav"  # stereo original (WavPack inside), first 3 s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, required=True, help="the folder holding corpus/ and build/")
    ap.add_argument("--out", type=Path, default=Path("samples"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as td:
        organ = Path(td) / "organ.wav"
        subprocess.run(["sox", "-D", str(args.corpus / ORGAN), "-b", "16", "-e", "signed-integer", str(organ),
                        "trim", "0", "3"], check=True)
        for name, path in [*((n, args.corpus / p) for n, p in CLIPS.items()), ("organ_stereo_44k", organ)]:
            a = audio.read(path)
            assert a.samples is not None and a.significant_bits == 16, path
            audio.write(args.out / f"{name}.16bit-original.wav", a.samples, a.rate, force=True)
            audio.write_u8(args.out / f"{name}.8bit.wav", a.samples, a.rate)
            print(name, a.rate, a.channels, a.frames)


if __name__ == "__main__":
    main()
