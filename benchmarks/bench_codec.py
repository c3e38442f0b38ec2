"""The .uad codec on held-out recordings: size against FLAC -8 and WavPack -hhx6 of the same files,
the coder's overhead over the model's exact cost (``bpd --steps K``), and encode/decode speed.

Every file is encoded, decoded and compared sample for sample (a failed round trip stops the run).

    python benchmarks/bench_codec.py --corpus ~/.cache/upscale-audio-corpus/corpus --files 8 --steps 16
    python benchmarks/bench_codec.py --corpus $C --files 0 --steps 1 --no-baselines --no-bpd  # every file

Columns: ``uad`` = whole .uad files (headers included), ``payload`` = the rANS words only, ``model``
= the model's exact code length under the same order and policy; overhead = payload / model - 1.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from bench_codecs import size as codec_size
from report import pick_files, print_table, write_json

from upscale_audio import audio, codec
from upscale_audio.checkpoint import load
from upscale_audio.scoring import bits_per_sample


def run_set(folder: Path, ckpt, n_files: int, steps: int, baselines: bool, bpd: bool, tmp: Path) -> dict:  # type: ignore[no-untyped-def]
    files = [a.path for a in pick_files(folder, count=n_files)]
    r = {"files": len(files), "samples": 0, "seconds_audio": 0.0, "uad_bytes": 0, "payload_bits": 0,
         "model_bits": 0.0, "encode_s": 0.0, "decode_s": 0.0, "flac_bytes": 0, "wavpack_bytes": 0}
    for f in files:
        info = audio.probe(f)
        uad, back = tmp / "x.uad", tmp / "x.wav"
        st = codec.compress_file(f, uad, ckpt, steps)
        t0 = time.perf_counter()
        codec.decompress_file(uad, back, ckpt)
        r["decode_s"] += time.perf_counter() - t0
        a = sf.read(str(f), dtype="int32", always_2d=True)[0]
        b = sf.read(str(back), dtype="int32", always_2d=True)[0]
        if not np.array_equal(a, b):
            raise SystemExit(f"round trip FAILED on {f}")
        r["samples"] += st.samples
        r["seconds_audio"] += info.frames / info.rate
        r["uad_bytes"] += st.bytes
        r["payload_bits"] += st.payload_bits
        r["model_bits"] += st.model_bits
        r["encode_s"] += st.seconds
        if baselines:
            r["flac_bytes"] += codec_size("flac -8", f, tmp)
            r["wavpack_bytes"] += codec_size("wavpack -hhx6", f, tmp)
        uad.unlink()
        back.unlink()
    n = r["samples"]
    r.update({"uad_bps": 8 * r["uad_bytes"] / n, "payload_bps": r["payload_bits"] / n, "model_bps": r["model_bits"] / n,
              "overhead_pct": 100 * (r["payload_bits"] / r["model_bits"] - 1),
              "encode_rt": r["seconds_audio"] / r["encode_s"], "decode_rt": r["seconds_audio"] / r["decode_s"]})
    if baselines:
        r.update({"flac_bps": 8 * r["flac_bytes"] / n, "wavpack_bps": 8 * r["wavpack_bytes"] / n})
    # the same files under `upscale-audio bpd --steps K` (its own order seed, whole files, unquantised policy)
    if bpd:
        items = [audio.read(f).u for f in files]
        r["bpd_steps_k"] = bits_per_sample(items, ckpt, given_bits=0, steps=steps).bits_per_sample
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--sets", nargs="+", default=["speech_16k", "speech_8k", "music_44k", "music_16k"])
    ap.add_argument("--files", type=int, default=8, help="files per set, spread evenly (0: all)")
    ap.add_argument("--steps", type=int, default=None, help="calls per stage (default: the model's)")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--no-baselines", action="store_true", help="skip FLAC/WavPack (needs flac, wavpack)")
    ap.add_argument("--no-bpd", action="store_true", help="skip the bpd --steps K column")
    ap.add_argument("--out", type=Path, default=Path("bench-results/codec.json"))
    args = ap.parse_args()
    baselines = not args.no_baselines
    if baselines and not (shutil.which("flac") and shutil.which("wavpack")):
        raise SystemExit("error: flac and wavpack are needed for the baselines (or pass --no-baselines)")
    ckpt = load(args.model)
    steps = args.steps or ckpt.recommended_steps()
    rows = []
    with tempfile.TemporaryDirectory() as td:
        warm = Path(td) / "warm.wav"  # numba compiles its kernels on first use: time steady state
        sf.write(warm, np.zeros((2000, 1), np.int16), 16000, subtype="PCM_16")
        codec.compress_file(warm, Path(td) / "warm.uad", ckpt, 1)
        codec.decompress_file(Path(td) / "warm.uad", Path(td) / "warm_back.wav", ckpt)
        for s in args.sets:
            folder = args.corpus / s / "heldout"
            if folder.is_dir():
                r = run_set(folder, ckpt, args.files, steps, baselines, not args.no_bpd, Path(td))
                rows.append({"set": s, "steps": steps, **r})
                print(f"{s}: {r['files']} files round-trip exact, {r['uad_bps']:.3f} bits/sample", flush=True)
    headers = ["set", "files", "K", "uad", "payload", "model", "coder overhead", "bpd --steps K", "FLAC -8",
               "WavPack -hhx6", "encode RT", "decode RT"]
    table = [[r["set"], str(r["files"]), str(r["steps"]), f"{r['uad_bps']:.3f}", f"{r['payload_bps']:.3f}",
              f"{r['model_bps']:.3f}", f"{r['overhead_pct']:+.3f}%", f"{r['bpd_steps_k']:.3f}" if "bpd_steps_k" in r else "-",
              f"{r['flac_bps']:.3f}" if baselines else "-", f"{r['wavpack_bps']:.3f}" if baselines else "-",
              f"{r['encode_rt']:.2f}x", f"{r['decode_rt']:.2f}x"] for r in rows]
    print_table(f"Lossless .uad on held-out files (bits per sample; every file decoded and compared; "
                f"{torch.get_num_threads()} threads)", headers, table)
    write_json(args.out, torch.device("cpu"), rows, model=str(ckpt.path), model_sha256=ckpt.sha256[:16])


if __name__ == "__main__":
    main()
