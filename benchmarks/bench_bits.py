"""Throughput of the numba kernels production calls against their numpy twins (median of repeats):
the prior's LMMSE interpolator and the budget DP. (The keyed uniforms are numpy: a numba twin was
2x faster, 0.8 against 1.4 ms per million keys, but importing numba costs every command 0.5 s.)

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
from report import print_table

from upscale_audio import intervals, policy, prior


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
    rng = np.random.default_rng(0)
    u = (np.cumsum(rng.normal(0, 300, args.n // 20)) % 65536).astype(np.int64)[None]  # a random walk
    lo, hi = intervals.linear(u, 8)
    L = np.sort(rng.random(256))[::-1].copy()
    cases = {  # name: (numba, numpy twin, items per call)
        "prior lmmse (8 known bits)": (lambda: prior.lmmse(lo, hi, 256, 8), lambda: prior.lmmse_np(lo, hi, 256, 8),
                                       u.size),
        "dp_policy (T=256, K=16)": (lambda: policy.dp_policy(L, 16), lambda: policy.dp_policy_np(L, 16), 1),
    }
    rows = []
    for name, (nb, ref, items) in cases.items():
        t_nb, t_np = timeit(nb, args.repeats), timeit(ref, args.repeats)
        rows.append({"kernel": name, "items": items, "numba_s": t_nb, "numpy_s": t_np, "speedup": t_np / t_nb})
    print_table(f"numba kernels against their numpy twins, numba {numba.__version__} (median of {args.repeats}):",
                ["kernel", "items", "numba s", "numpy s", "numba / numpy"],
                [[r["kernel"], f"{r['items']:,}", f"{r['numba_s']:.4f}", f"{r['numpy_s']:.4f}", f"{r['speedup']:.1f}x"]
                 for r in rows])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"n": args.n, "numba": numba.__version__,
                                    "numpy": np.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
