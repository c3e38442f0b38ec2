"""Extend the corpus with more voices and instruments from Debian packages (downloaded and
unpacked, never installed), each source with its own held-out split.

Sources (licences from the packages' debian/copyright):

* speech_8k_ru: asterisk-core-sounds-ru-wav 1.6.1-1, Russian IVR prompts (female voice), native
  8 kHz WAV; CC-BY-3.0 (Maxim, 2010, per debian/copyright).
* music_sf2: fluid-soundfont-gm 3.1-5.3, the FluidR3 GM SoundFont's recorded instrument samples
  (piano, strings, winds, percussion, ...) at their native rates; MIT.

Every file lands in CORPUS/<set>/{train,heldout}/<source>__<name>.wav as 16-bit mono PCM; a file is
held out when a hash of its name falls in the held-out share (15%), so the split is stable across
runs. Soundfont samples shorter than 0.25 s or not 16-bit-real (fewer than 12 bits in use) are
skipped. A manifest (set, source, package, version, licence, rate, frames, split) is written to
CORPUS/extended_manifest.tsv.

    python scripts/extend_corpus.py --corpus ~/.cache/upscale-audio-corpus/corpus
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

HELDOUT_SHARE = 0.15
PACKAGES = {
    "asterisk-core-sounds-ru-wav": ("speech_8k_ru", "asterisk_ru", "CC-BY-3.0"),
    "fluid-soundfont-gm": ("music_sf2", "fluidr3_gm", "MIT"),
}


def split_of(name: str) -> str:
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "heldout" if h < HELDOUT_SHARE else "train"


def fetch(package: str, work: Path) -> tuple[Path, str]:
    """apt-get download + dpkg -x; returns (unpacked root, version)."""
    work.mkdir(parents=True, exist_ok=True)
    debs = list(work.glob(f"{package}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", package], cwd=work, check=True, stdout=subprocess.DEVNULL)
        debs = list(work.glob(f"{package}_*.deb"))
    deb = debs[0]
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    root = work / package
    if not root.exists():
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root, version


def sf2_samples(path: Path) -> list[tuple[str, int, np.ndarray]]:
    """(name, rate, int16 samples) of every sample header of a SoundFont 2 file (RIFF 'sfbk':
    the 'smpl' chunk holds 16-bit PCM, the 'shdr' records give start, end and rate)."""
    data = path.read_bytes()
    smpl = shdr = None

    def walk(a: int, b: int) -> None:
        nonlocal smpl, shdr
        while a + 8 <= b:
            cid, size = data[a : a + 4], struct.unpack("<I", data[a + 4 : a + 8])[0]
            body = a + 8
            if cid == b"LIST":
                walk(body + 4, body + size)
            elif cid == b"smpl":
                smpl = np.frombuffer(data, dtype="<i2", count=size // 2, offset=body)
            elif cid == b"shdr":
                shdr = data[body : body + size]
            a = body + size + (size & 1)

    walk(12, len(data))
    assert smpl is not None and shdr is not None, "not a SoundFont 2 file"
    out = []
    for i in range(len(shdr) // 46 - 1):  # the last record is the terminal 'EOS'
        rec = shdr[i * 46 : (i + 1) * 46]
        name = rec[:20].split(b"\0")[0].decode("latin-1").strip()
        start, end, _, _, rate = struct.unpack("<5I", rec[20:40])
        sample_type = struct.unpack("<H", rec[44:46])[0]
        if sample_type & 0x8000 or end <= start:  # ROM samples: no data here
            continue
        out.append((name, int(rate), np.array(smpl[start:end], dtype=np.int16)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "upscale-audio-extend")
    args = ap.parse_args()
    rows = []
    for package, (set_name, source, licence) in PACKAGES.items():
        root, version = fetch(package, args.work)
        if package.endswith("-wav"):
            items = []
            for f in sorted(root.rglob("*.wav")):
                x, rate = sf.read(f, dtype="int16", always_2d=True)
                items.append((f.relative_to(root).as_posix().replace("/", "_"), rate, x[:, 0]))
        else:
            items = [(f"{i:04d}_{n}".replace("/", "_").replace(" ", "_"), r, x)
                     for f in root.rglob("*.sf2") for i, (n, r, x) in enumerate(sf2_samples(f))]
        kept = 0
        for name, rate, x in items:
            if len(x) < 0.25 * rate or not np.any(x):
                continue
            used = int(np.bitwise_or.reduce(x.astype(np.int64) + 32768))
            if 16 - ((used & -used).bit_length() - 1) < 12:
                continue
            split = split_of(f"{source}/{name}")
            dst = args.corpus / set_name / split / f"{source}__{Path(name).stem}.wav"
            dst.parent.mkdir(parents=True, exist_ok=True)
            sf.write(dst, x, rate, subtype="PCM_16")
            rows.append((set_name, source, package, version, licence, rate, len(x), split, dst.name))
            kept += 1
        print(f"{package} {version}: {kept} of {len(items)} files -> {set_name}")
    with open(args.corpus / "extended_manifest.tsv", "w") as fh:
        fh.write("set\tsource\tpackage\tversion\tlicence\trate\tframes\tsplit\tfile\n")
        for r in rows:
            fh.write("\t".join(map(str, r)) + "\n")
    for set_name in sorted({r[0] for r in rows}):
        for split in ("train", "heldout"):
            sel = [r for r in rows if r[0] == set_name and r[7] == split]
            print(f"{set_name}/{split}: {len(sel)} files, {sum(r[6] / r[5] for r in sel) / 60:.1f} min")


if __name__ == "__main__":
    main()
