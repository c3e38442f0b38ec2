"""The training campaign's learning curve: held-out bpd against cumulative CPU minutes.

Reads the ``log.jsonl`` of each run (validation bpd on the fixed festvox held-out crops, wall
seconds since the run began, cumulative over resumes) and converts wall time to CPU minutes with the
run's thread count (``train.num_threads`` in its ``config.toml``; a leg resumed with another thread
count is given as RUN:THREADS:FROM_STEP; a run that continues another as RUN@MINUTES). Writes a markdown table and a PNG. ``--what`` names what
the runs' validation measures (all 16 bits by default; "festvox, low byte" for low-byte specialists).

    python benchmarks/learning_curve.py --runs prior=runs/campaign_prior predict=runs/cmp_predict \\
        --reference shipped=8.92 --png docs/learning_curve.png --md docs/learning_curve.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import tomllib


def curve(run: Path, legs: list[tuple[int, int]]) -> list[tuple[float, int, float]]:
    """(cumulative CPU minutes, step, val bpd) of a run; ``legs``: (from step, threads), sorted."""
    cfg = tomllib.loads((run / "config.toml").read_text())
    default_threads = int(cfg["train"].get("num_threads", 0)) or 2
    legs = legs or [(0, default_threads)]
    out, cpu, last_t, last_step = [], 0.0, 0.0, 0
    for line in (run / "log.jsonl").read_text().splitlines():
        r = json.loads(line)
        threads = [th for s0, th in legs if r["step"] > s0][-1] if any(r["step"] > s0 for s0, _ in legs) \
            else legs[0][1]
        t = float(r.get("elapsed_s", last_t))
        cpu += max(t - last_t, 0.0) * threads / 60
        last_t, last_step = t, r["step"]
        if "val_bpd" in r:
            out.append((cpu, last_step, float(r["val_bpd"])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True,
                    help="NAME=RUN_DIR[@OFFSET_MINUTES][:THREADS:FROM_STEP,...]")
    ap.add_argument("--reference", nargs="*", default=[], help="NAME=BPD horizontal lines")
    ap.add_argument("--what", default="festvox, 16 bits", help="what the runs' val_bpd measures (table, axis)")
    ap.add_argument("--png", type=Path)
    ap.add_argument("--md", type=Path)
    args = ap.parse_args()
    curves = {}
    for item in args.runs:
        name, spec = item.split("=", 1)
        run, *leg_specs = spec.split(",")
        path, _, first = run.partition(":")
        path, _, offset = path.partition("@")  # a run that continues another: its CPU minutes start there
        legs = [tuple(int(v) for v in ls.split(":")[::-1]) for ls in ([first] if first else []) + leg_specs]
        pts = curve(Path(path), sorted((s, th) for s, th in legs))  # type: ignore[misc]
        curves[name] = [(c + float(offset or 0), st, b) for c, st, b in pts]
    refs = {n: float(v) for n, v in (r.split("=", 1) for r in args.reference)}
    lines = [f"| run | CPU minutes | step | held-out bpd ({args.what}) |", "|---|---|---|---|"]
    for name, pts in curves.items():
        lines += [f"| {name} | {c:.1f} | {s} | {b:.3f} |" for c, s, b in pts]
    lines += [f"| {n} (reference) | | | {v:.3f} |" for n, v in refs.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        args.md.write_text(text)
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.6))
        for name, pts in curves.items():
            ax.plot([p[0] for p in pts], [p[2] for p in pts], marker="o", ms=3, label=name)
        for n, v in refs.items():
            ax.axhline(v, ls="--", lw=1, color="gray")
            ax.text(0, v, f" {n}", va="bottom", fontsize=8, color="gray")
        ax.set_xlabel("cumulative CPU minutes")
        ax.set_ylabel(f"held-out bits/sample ({args.what})")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(args.png, dpi=110)


if __name__ == "__main__":
    main()
