"""int8 weights and activations for a model's ONNX network: what they save and what they cost.

Quantizes the model's exported network (static QDQ, per-channel int8 weights, uint8 activations,
min-max ranges from calibration calls on the *training* splits at reveal fractions 0 to 0.9) for a
chosen set of Conv nodes (``--convs dilated``: the gated blocks' dilated convs only; ``all``: every
Conv), then on each held-out set scores the low byte of 8-bit truncations under the float and the
int8 network at reveal fractions t = 0, .25, .5, .75 (cross-entropy of the unrevealed positions,
bits; issue 15 allows int8 where the held-out bits move by under 0.01) and times one call of a
48 000-sample window on one thread, the two networks interleaved. Prints a table and writes JSON.

    python benchmarks/bench_quantize.py --corpus $C [--model upscale_audio/models/lowbyte.pt] [--convs dilated]

Needs the ``onnx`` package (the dev extra) besides onnxruntime. docs/RESULTS.md §17.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from report import SETS, pick_files, print_table, write_json

from upscale_audio import checkpoint, engine, intervals

FRACTIONS = (0.0, 0.25, 0.5, 0.75)
WINDOW = 48000


def call_feeds(ck: checkpoint.LoadedModel, u: np.ndarray, frac: float, rng: np.random.Generator) -> tuple[dict, np.ndarray, np.ndarray]:
    """A low-byte call on an 8-bit truncation of u (int64 [T], offset binary) with a random ``frac``
    of positions revealed: (ONNX feeds, target digits [T], revealed bool [T])."""
    x = u[None]
    stage = ck.stages[-1]
    revealed = rng.random(x.shape) < frac
    lo, hi = intervals.linear(x, 8)
    value, target = ck.maps.reveal(x, revealed, np.array([stage]))
    feeds = {"value": value.astype(np.int64), "revealed": revealed.astype(np.float32),
             "stage": np.array([stage], np.int64), "t_frac": np.array([(stage + frac) / ck.maps.S], np.float32),
             "iv_lo": lo.astype(np.int64), "iv_hi": hi.astype(np.int64)}
    return feeds, target[0], revealed[0]


def quantize(src: Path, dst: Path, ck: checkpoint.LoadedModel, corpus: Path, convs: str) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    rng = np.random.default_rng(1)
    calls = []
    for s in SETS:
        u = np.concatenate([a.u.ravel() for a in pick_files(corpus / s / "train", 24.0)]).astype(np.int64)
        for i, a in enumerate(range(0, min(len(u), 6 * 24000), 24000)):
            calls.append(call_feeds(ck, u[a : a + 24000], (0.0, 0.3, 0.6, 0.9)[i % 4], rng)[0])

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calls)

        def get_next(self) -> dict | None:
            return next(self.it, None)

    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    nodes = [n.name for n in onnx.load(str(pre)).graph.node
             if n.op_type == "Conv" and (convs == "all" or "dilated" in n.name)]
    quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                    nodes_to_quantize=nodes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=Path("upscale_audio/models/lowbyte.pt"))
    ap.add_argument("--convs", choices=("dilated", "all"), default="dilated")
    ap.add_argument("--seconds", type=float, default=20.0, help="held-out audio per set")
    ap.add_argument("--out", type=Path, default=Path("bench-results/quantize.json"))
    args = ap.parse_args()
    import onnxruntime as ort

    ck = checkpoint.load(args.model)
    if ck.known_bits != 8:
        raise SystemExit("bench_quantize scores a low-byte model (ardm.known_bits = 8)")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        f32, i8 = Path(d) / "f32.onnx", Path(d) / "int8.onnx"
        engine.export_onnx(ck.model, ck.sha256, ck.card(), f32)
        quantize(f32, i8, ck, args.corpus, args.convs)
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = 1, 1, 3
        nets = {"float32": ort.InferenceSession(str(f32), so), "int8": ort.InferenceSession(str(i8), so)}
        rng = np.random.default_rng(0)
        times: dict[str, list[float]] = {k: [] for k in nets}
        for s in SETS:
            u = np.concatenate([a.u.ravel() for a in pick_files(args.corpus / s / "heldout", args.seconds)]).astype(np.int64)
            for frac in FRACTIONS:
                ce: dict[str, list[np.ndarray]] = {k: [] for k in nets}
                for i, a in enumerate(range(0, len(u), WINDOW)):
                    feeds, target, revealed = call_feeds(ck, u[a : a + WINDOW], frac, rng)
                    for name in (list(nets) if i % 2 == 0 else list(nets)[::-1]):  # alternate who runs first
                        t0 = time.perf_counter()
                        p = nets[name].run(None, feeds)[0][0]
                        if len(target) == WINDOW:
                            times[name].append(time.perf_counter() - t0)
                        bits = -np.log2(np.maximum(p[np.arange(len(target)), target], 1e-30))
                        ce[name].append(bits[~revealed])
                row = {"set": s, "t": frac, **{k: float(np.concatenate(v).mean()) for k, v in ce.items()}}
                row["change_bits"] = row["int8"] - row["float32"]
                rows.append(row)
                print(row, flush=True)
    ms = {k: 1000 * statistics.median(v) for k, v in times.items()}
    print_table(f"int8 ({args.convs} convs) against float32, {args.model.name}, low byte of 8-bit held-out audio; "
                f"one call of {WINDOW} samples on one thread: float32 {ms['float32']:.0f} ms, int8 {ms['int8']:.0f} ms "
                f"({ms['float32'] / ms['int8']:.2f}x)",
                ["set", "t", "float32 bits", "int8 bits", "change"],
                [[r["set"], f"{r['t']:.2f}", f"{r['float32']:.4f}", f"{r['int8']:.4f}", f"{r['change_bits']:+.4f}"]
                 for r in rows])
    write_json(args.out, torch.device("cpu"), rows, model=str(args.model), convs=args.convs, call_ms=ms,
               seconds=args.seconds)


if __name__ == "__main__":
    main()
