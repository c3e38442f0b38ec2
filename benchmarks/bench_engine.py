"""A network call under PyTorch and under ONNX Runtime (engine.py), same weights, same input.

For each window length (the CPU default chunk of 16 000 samples plus the halo, and longer ones) the
bundled low-byte model computes a t = 0 call (what ``enhance --mode mean`` makes) ``--repeats``
times per engine: features, trunk, output layer and the softmax over the allowed digits
(``engine.call_probs``), numpy in and numpy out, as the reveal walk calls them. Prints the median
samples per second, the ratio ORT / PyTorch measured in the same run, and the largest difference of
their probabilities; writes JSON.

    python benchmarks/bench_engine.py [--model M.pt] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from report import print_table, write_json

from upscale_audio import checkpoint, engine, intervals


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
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # engine.cpu_threads: the ORT session's threads
    ck = checkpoint.load(args.model, "onnx")
    assert ck.onnx is not None
    torch_net = engine.TorchNet(checkpoint.load(args.model, "torch").model, gives="probs")
    rng = np.random.default_rng(0)
    rows = []
    for core in args.lengths:
        T = core + 2 * ck.halo
        u = (np.clip(np.cumsum(rng.integers(-600, 600, T)), -30000, 30000) + 32768).astype(np.int64)[None]
        lo, hi = intervals.linear(u, 8)
        stage = np.array([ck.stages[-1]])
        call = (lo, np.zeros_like(u, dtype=bool), stage, np.array([stage[0] / ck.maps.S], dtype=np.float32), lo, hi)
        want, got = torch_net(*call), ck.onnx(*call)
        rate_torch = median_rate(lambda: torch_net(*call), T, args.repeats)
        rate_ort = median_rate(lambda: ck.onnx(*call), T, args.repeats)  # type: ignore[misc]
        rows.append({"window": T, "torch_samples_per_s": rate_torch, "onnx_samples_per_s": rate_ort,
                     "ratio": rate_ort / rate_torch, "max_abs_diff": float(np.abs(got - want).max())})
        print(rows[-1], flush=True)
    print_table(f"A network call of {args.model.name} (features, trunk, output layer, softmax), {args.threads} threads, "
                f"median of {args.repeats}:",
                ["window samples", "PyTorch samples/s", "ONNX Runtime samples/s", "ORT / PyTorch", "max |diff| of p"],
                [[str(r["window"]), f"{r['torch_samples_per_s']:.0f}", f"{r['onnx_samples_per_s']:.0f}",
                  f"{r['ratio']:.2f}", f"{r['max_abs_diff']:.1e}"] for r in rows])
    write_json(args.out, torch.device("cpu"), rows, model=str(args.model), threads=args.threads)


if __name__ == "__main__":
    main()
