"""Throughput of the numba bit kernels against their numpy twins (Msamples/s, median of repeats).

    python benchmarks/bench_bits.py [--n 4000000] [--out bench-results/bits.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numba
import numpy as np

from upscale_audio import bits

SCHEDULE = [8, 2, 2, 2, 2]


def timeit(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up (numba compiles here, or loads its cache)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=4_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("bench-results/bits.json"))
    args = ap.parse_args()
    u = np.random.default_rng(0).integers(0, 65536, args.n)
    digits = bits.split_digits_np(u, SCHEDULE)
    idx = np.arange(args.n, dtype=np.uint64)
    cases = {
        "split_digits": (lambda: bits.split_digits(u, SCHEDULE), lambda: bits.split_digits_np(u, SCHEDULE)),
        "merge_digits": (lambda: bits.merge_digits(digits, SCHEDULE), lambda: bits.merge_digits_np(digits, SCHEDULE)),
        "stage_values": (lambda: bits.stage_values(u, SCHEDULE, 2), lambda: bits.stage_values_np(u, SCHEDULE, 2)),
        "allowed_digit_range": (lambda: bits.allowed_digit_range(u, SCHEDULE, 1, 9),
                                lambda: bits.allowed_digit_range_np(u, SCHEDULE, 1, 9)),
        "significant_bits": (lambda: bits.significant_bits(u), lambda: bits.significant_bits_np(u)),
        "keyed_uniform": (lambda: bits.keyed_uniform(7, idx), lambda: bits.keyed_uniform_np(7, idx)),
    }
    rows = []
    for name, (nb, ref) in cases.items():
        t_nb, t_np = timeit(nb, args.repeats), timeit(ref, args.repeats)
        rows.append({"kernel": name, "numba_msps": args.n / t_nb / 1e6, "numpy_msps": args.n / t_np / 1e6,
                     "speedup": t_np / t_nb})
    print(f"\nBit kernels on {args.n:,} samples, schedule {SCHEDULE}, numba {numba.__version__} "
          f"(median of {args.repeats}):\n")
    print("| kernel | numba Msamples/s | numpy Msamples/s | numba / numpy |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['kernel']} | {r['numba_msps']:.1f} | {r['numpy_msps']:.1f} | {r['speedup']:.2f}x |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"n": args.n, "schedule": SCHEDULE, "numba": numba.__version__,
                                    "numpy": np.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
