"""The network's trunk under PyTorch and under ONNX Runtime (engine.py), same weights, same input.

For each window length (the CPU default chunk of 16 000 samples plus the halo, and longer ones) the
bundled model's trunk runs ``--repeats`` times per engine; prints the median samples per second,
the ratio ORT / PyTorch measured in the same run, and the largest difference of their outputs;
writes JSON.

    python benchmarks/bench_engine.py [--model M.pt] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from report import print_table, write_json

from upscale_audio import checkpoint


def median_rate(fn, length: int, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return length / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=checkpoint.BUNDLED_LOW_BYTE)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--lengths", type=int, nargs="+", default=[16000, 32000, 64000], help="core samples per window")
    ap.add_argument("--out", type=Path, default=Path("bench-results/engine.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ck = checkpoint.load(args.model)
    trunk = ck.trunk("onnx")
    m = ck.model
    halo = m.receptive_field() // 2
    g = torch.Generator().manual_seed(0)
    rows = []
    for core in args.lengths:
        T = core + 2 * halo
        feats = 0.3 * torch.randn(1, m.input_conv.in_channels, T, generator=g)
        value = torch.randint(0, 1 << 16, (1, T), generator=g)
        with torch.inference_mode():
            temb = m.step_embedding(torch.tensor([0.5]))
            want = m.trunk(feats, value, temb)
            got = trunk(feats, value, temb)  # type: ignore[misc]
            rate_torch = median_rate(lambda: m.trunk(feats, value, temb), T, args.repeats)
            rate_ort = median_rate(lambda: trunk(feats, value, temb), T, args.repeats)  # type: ignore[misc]
        rows.append({"window": T, "torch_samples_per_s": rate_torch, "onnx_samples_per_s": rate_ort,
                     "ratio": rate_ort / rate_torch, "max_abs_diff": float((got - want).abs().max())})
        print(rows[-1], flush=True)
    print_table(f"Trunk of {args.model.name}, {args.threads} threads, median of {args.repeats}:",
                ["window samples", "PyTorch samples/s", "ONNX Runtime samples/s", "ORT / PyTorch", "max |diff|"],
                [[str(r["window"]), f"{r['torch_samples_per_s']:.0f}", f"{r['onnx_samples_per_s']:.0f}", f"{r['ratio']:.2f}",
                  f"{r['max_abs_diff']:.1e}"] for r in rows])
    write_json(args.out, torch.device("cpu"), rows, model=str(args.model), threads=args.threads)


if __name__ == "__main__":
    main()
