"""Throughput of the backbone: training steps and inference calls, in samples per second.

Measures the config's model on random audio-like input after warm-up (median of timed repeats).
On CUDA, training uses bf16 autocast as ``train.py`` does and timings synchronise the device.

    python benchmarks/bench_throughput.py --config configs/default.toml --out bench-results/throughput.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from report import device_name, print_table, write_json

from upscale_audio import ardm
from upscale_audio.config import load_config
from upscale_audio.model import build_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(cfg_path: Path, device: torch.device, batch: int, crop: int, repeats: int) -> dict[str, float]:
    cfg = load_config(cfg_path)
    model = build_model(cfg).to(device)
    maps = ardm.StageMaps(cfg.ardm.schedule)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    t = torch.arange(crop, device=device)[None].float()
    u = (32768 + 8000 * torch.sin(t / 13 + torch.arange(batch, device=device)[:, None])
         + torch.randint(0, 256, (batch, crop), device=device)).long()
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    g = torch.Generator().manual_seed(0)

    def train_step() -> None:
        with amp:
            out = ardm.training_elbo(model, u, maps, cfg.ardm.known_bits, g)
        opt.zero_grad()
        out["elbo"].mean().backward()
        opt.step()

    stage = torch.full((batch,), maps.modelled_stages(cfg.ardm.known_bits)[-1], device=device)
    rev = torch.zeros(batch, crop, device=device)
    tf = torch.zeros(batch, device=device)

    @torch.no_grad()
    def infer() -> None:
        with amp:
            model(u, rev, stage, tf)

    res = {}
    for name, fn in (("train", train_step), ("infer", infer)):
        for _ in range(2):
            fn()
        times = []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t0)
        res[f"{name}_samples_per_s"] = batch * crop / statistics.median(times)
    res["params"] = model.num_parameters()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", type=Path, default=Path("configs/default.toml"))
    ap.add_argument("--batch", type=int, nargs="+", default=[8])
    ap.add_argument("--crop", type=int, default=8000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=Path("bench-results/throughput.json"))
    args = ap.parse_args()
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if args.device == "auto" else args.device))
    rows = []
    for b in args.batch:
        r = measure(args.config, dev, b, args.crop, args.repeats)
        rows.append({"batch": b, "crop": args.crop, **r})
    print_table(f"Throughput of {args.config} on {dev} ({device_name(dev)}), torch {torch.__version__}:",
                ["batch x crop", "params", "train samples/s", "inference samples/s", "inference x real time at 16 kHz"],
                [[f"{r['batch']} x {r['crop']}", f"{r['params']:,}", f"{r['train_samples_per_s']:,.0f}",
                  f"{r['infer_samples_per_s']:,.0f}", f"{r['infer_samples_per_s'] / 16000:.1f}"] for r in rows])
    write_json(args.out, dev, rows, config=str(args.config))

if __name__ == "__main__":
    main()
