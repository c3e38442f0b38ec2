"""Forward speed of backbone sizes (untrained weights): the speed side of a faster network.

One forward call over ``--length`` samples, median of ``--repeats``, for each CHANNELSxBLOCKS; the
rest of the config as ``--config``. Quote the ratios: this machine is shared.

    python benchmarks/bench_backbones.py --sizes 48x12 32x12 64x8 32x8 --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch
from report import print_table, write_json

from upscale_audio.config import load_config
from upscale_audio.model import build_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=Path("configs/default.toml"))
    ap.add_argument("--sizes", nargs="+", default=["64x12", "48x12", "32x12", "64x8", "32x8"])
    ap.add_argument("--length", type=int, default=18000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=Path("bench-results/backbones.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base = load_config(args.config, [])
    rows = []
    for size in args.sizes:
        ch, blocks = (int(v) for v in size.split("x"))
        model_cfg = dataclasses.replace(base.model, channels=ch, blocks=blocks,
                                        dilation_cycle=min(base.model.dilation_cycle, blocks))
        m = build_model(dataclasses.replace(base, model=model_cfg)).eval()
        T = args.length
        v, r = torch.randint(0, 65536, (1, T)), torch.zeros(1, T)
        st, tf = torch.tensor([m.stages[-1]]), torch.tensor([0.5])
        times = []
        with torch.no_grad():
            m(v, r, st, tf)
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                m(v, r, st, tf)
                times.append(time.perf_counter() - t0)
        rows.append({"size": size, "params": m.num_parameters(), "receptive_field": m.receptive_field(),
                     "samples_per_s": T / statistics.median(times)})
    ref = next((x["samples_per_s"] for x in rows if x["size"] == "48x12"), rows[0]["samples_per_s"])
    print_table(f"Backbone forward speed, {torch.get_num_threads()} thread(s), {args.length} samples",
                ["channels x blocks", "parameters", "k samples/s", "against 48x12"],
                [[x["size"], f"{x['params'] / 1e6:.2f} M", f"{x['samples_per_s'] / 1e3:.1f}",
                  f"{x['samples_per_s'] / ref:.2f}x"] for x in rows])
    write_json(args.out, torch.device("cpu"), rows, length=args.length)


if __name__ == "__main__":
    main()
