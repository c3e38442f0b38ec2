"""The CLI's tool commands: compress, decompress, compare, info, export (registered on ``cli.app``)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .cli import _bar, _each, _plan, app, fatal


class Preset(str, Enum):
    fast = "fast"
    default = "default"
    best = "best"


@app.command()
def compress(
    inputs: Annotated[list[Path], typer.Argument(help="Audio files or directories (walked recursively).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output .uad file, or directory for several inputs.")] = None,
    model: Annotated[Path | None, typer.Option(help="Checkpoint (default: the bundled model).")] = None,
    preset: Annotated[Preset, typer.Option(help="fast (K=2), default (K=4) or best (K=64, smallest files); K = network calls per stage.")] = Preset.default,
    steps: Annotated[int | None, typer.Option(help="Network calls per stage K (overrides --preset).")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Decode each file after coding and compare.")] = False,
    engine: Annotated[str, typer.Option(help="What runs the network: auto (ONNX Runtime when the model has its .onnx "
                                             "beside it), torch or onnx. The file records it; decoding uses the same.")] = "auto",
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summaries.")] = False,
) -> None:
    """Lossless compression of 16-bit (or 8-bit) audio into .uad files with the model and rANS."""
    from . import codec
    from .checkpoint import load

    if steps is not None and steps < 1:
        fatal(f"--steps {steps}: must be at least 1")
    plan = _plan(inputs, output, force, lambda p: p.with_suffix(codec.SUFFIX), out_suffixes=(codec.SUFFIX,))
    ckpt = load(model)
    k = steps or codec.PRESETS[preset.value]
    how = codec.resolve_engine(ckpt, engine)

    def one(src: Path, dst: Path) -> None:
        st = codec.compress_path(src, dst, ckpt, k, verify_after=verify, force=force, engine=how,
                                 bar=lambda total, desc: _bar(total, desc, quiet))
        if not quiet:
            typer.echo(f"{src} -> {dst}: {st.bits_per_sample:.3f} bits/sample ({st.bytes} bytes, model cost "
                       f"{st.model_bits / st.samples:.3f}), K={k}, {how}, {st.seconds:.1f} s, "
                       f"{st.realtime:.2f}x real time" + (", verified" if verify else ""), err=True)

    _each(plan, one)


@app.command()
def decompress(
    inputs: Annotated[list[Path], typer.Argument(help=".uad files or directories (walked recursively).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output .wav file, or directory for several inputs.")] = None,
    model: Annotated[Path | None, typer.Option(help="Checkpoint the files were coded with (default: the bundled model).")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summaries.")] = False,
) -> None:
    """Decode .uad files back to the original PCM, bit for bit (a WAV file of the stored depth)."""
    from . import codec
    from .checkpoint import load

    for p in inputs:  # a foreign file given by name is refused before any output name is considered
        if p.is_file():
            with open(p, "rb") as f:
                codec.Header.read(f, str(p))
    plan = _plan(inputs, output, force, lambda p: p.with_suffix(".wav"), suffixes={codec.SUFFIX},
                 out_suffixes=(".wav",))
    ckpt = load(model)

    def one(src: Path, dst: Path) -> None:
        h, st = codec.decompress_path(src, dst, ckpt, force=force, bar=lambda total, desc: _bar(total, desc, quiet))
        if not quiet:
            typer.echo(f"{src} -> {dst}: {st.frames} frames x {st.channels} ch, {h.rate} Hz, {h.subtype}; "
                       f"{st.seconds:.1f} s, {st.realtime:.2f}x real time", err=True)

    _each(plan, one)


@app.command()
def compare(
    original: Annotated[Path, typer.Argument(help="The reference (16-bit original).")],
    restored: Annotated[list[Path], typer.Argument(help="Restored (or any) versions of it, same length and rate.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    png: Annotated[Path | None, typer.Option("--png", help="Write spectrograms side by side to this PNG.")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing PNG.")] = False,
) -> None:
    """SNR, segmental SNR and log-spectral distance of restorations against the original."""
    from . import audio, metrics

    ref = audio.read(original)
    if ref.samples is None:
        fatal(f"{original}: deeper than 16 bits; compare 16-bit files")
    if png is not None:
        audio.check_writable(png, force, (".png",))
    rows, signals = [], {original.name: ref.samples}
    for p in restored:
        a = audio.read(p)
        if a.samples is None or a.samples.shape != ref.samples.shape or a.rate != ref.rate:
            fatal(f"{p}: not the same length, channels and rate as {original} ({ref.frames} frames, "
                  f"{ref.channels} ch, {ref.rate} Hz); compare versions of the same recording")
        rows.append({"file": str(p), "snr_db": metrics.snr_db(ref.samples, a.samples),
                     "segsnr_db": metrics.segmental_snr_db(ref.samples, a.samples, ref.rate),
                     "lsd": metrics.lsd(ref.samples, a.samples)})
        signals[p.name] = a.samples
    if png is not None:
        from .files import replacing

        with replacing(png, force) as tmp:
            metrics.spectrogram_png(Path(tmp), signals, ref.rate)
    if as_json:
        typer.echo(json.dumps({"original": str(original), "rate": ref.rate, "results": rows}))
        return
    typer.echo("| file | SNR dB | segmental SNR dB | LSD |")
    typer.echo("|---|---|---|---|")
    for r in rows:
        typer.echo(f"| {r['file']} | {r['snr_db']:.2f} | {r['segsnr_db']:.2f} | {r['lsd']:.3f} |")


@app.command()
def info(model: Annotated[Path | None, typer.Option(help="Checkpoint (default: the bundled model).")] = None) -> None:
    """Print the model card (size, receptive field, schedule, training data, stored policies) and
    which models are bundled for which job."""
    from . import codec
    from .checkpoint import BUNDLED, BUNDLED_INTERVALS, BUNDLED_LOW_BYTE, BUNDLED_LOW_BYTE_MEAN, load
    from .engine import onnx_path
    from .enhance import SAMPLE_STEPS

    ckpt = load(model, "auto")
    assert ckpt.path is not None
    cfg = ckpt.config
    rf = cfg.model.receptive_field()
    rates = list(cfg.data.sample_rates) or [16000]
    meta = ckpt.meta
    lines = [
        f"model:            {ckpt.path} (sha256 {ckpt.sha256[:16]})",
        f"parameters:       {ckpt.parameters:,}",
        f"backbone:         {cfg.model.blocks} blocks x {cfg.model.channels} channels, dilation cycle "
        f"{cfg.model.dilation_cycle}, features '{cfg.model.features}'",
        f"receptive field:  {rf} samples (" + ", ".join(f"{1000 * rf / r:.1f} ms at {r} Hz" for r in rates) + ")",
        f"schedule:         {list(cfg.ardm.schedule)} (stages modelled: {list(ckpt.stages)})",
        f"known bits:       {cfg.ardm.known_bits} (models the {16 - cfg.ardm.known_bits} bits below)",
        f"training data:    {meta.get('files', '?')} files, {float(meta.get('data_seconds', 0)) / 60:.1f} min, "
        f"rates {meta.get('sample_rates', '?')}",
        f"training:         {meta.get('steps', '?')} steps, {float(meta.get('train_seconds', 0)) / 60:.1f} min"
        + (f", initialised from {meta['init']}" if meta.get("init") else ""),
        f"tracked ELBO:     {float(meta.get('tracked_bits', float('nan'))):.3f} bits/sample",
        f"calls per stage:  --mode sample {SAMPLE_STEPS}, compress presets {codec.PRESETS} (the DP's "
        f"recommendation: {ckpt.recommended_steps()})",
        "stored policies:  " + ", ".join(
            f"K={K}: {v['expected_bits']:.3f}" for K, v in ckpt.stored_policies.items()) + " (expected bits/sample)",
    ]
    onnx = onnx_path(ckpt.path)
    engine = "PyTorch (no .onnx beside the model; 'upscale-audio export --onnx' writes one)"
    if ckpt.onnx is not None:
        engine = f"ONNX Runtime ({onnx.name}): enhance without PyTorch, compress and decompress; bpd: PyTorch"
    elif onnx.is_file():
        engine = f"PyTorch ({onnx.name} is from another checkpoint or an older version, or onnxruntime is missing)"
    lines.append(f"CPU engine:       {engine}")
    roles = {BUNDLED: "all 16 bits: bpd, compress, decompress",
             BUNDLED_LOW_BYTE: "the low byte: enhance --mode sample of 8..15-bit PCM",
             BUNDLED_LOW_BYTE_MEAN: "the low byte, fast: enhance --mode mean of 8..15-bit PCM",
             BUNDLED_INTERVALS: "known intervals: enhance of PCM under 8 bits, --mode sample of mu-law and A-law, bpd --given"}
    from .correction import BUNDLED as CORRECTION

    roles[CORRECTION] = "the learned correction of the classical estimate: enhance --mode mean of mu-law and A-law"
    bundled = [f"{p.name} ({role})" for p, role in roles.items() if p.is_file()]
    lines.append("bundled models:   " + ("; ".join(bundled) if bundled else "none (pass --model)"))
    typer.echo("\n".join(lines))


@app.command("export")
def export_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Training checkpoint (e.g. RUN_DIR/latest.pt).")],
    out: Annotated[Path | None, typer.Argument(help="Where to write the inference-only model.")] = None,
    onnx: Annotated[bool, typer.Option("--onnx", help="Also write the network as OUT.onnx for ONNX Runtime "
                                                      "(faster CPU restores without PyTorch; needs: pip install onnx). Without OUT: "
                                                      "only the .onnx of CHECKPOINT.")] = False,
    force: Annotated[bool, typer.Option("--force", "-f")] = False,
) -> None:
    """Strip training state from a checkpoint (EMA weights, config, policies remain); --onnx: its
    ONNX network beside it."""
    from .checkpoint import export, load
    from .engine import export_onnx, onnx_path

    if out is None and not onnx:
        fatal("give OUT (the inference-only model to write), or --onnx to write only CHECKPOINT's .onnx")
    target = out if out is not None else checkpoint
    if onnx and onnx_path(target).exists() and not force:  # before writing anything: nothing partial
        fatal(f"{onnx_path(target)}: exists; use --force to overwrite")
    if out is not None:
        export(checkpoint, out, force)
    if onnx:
        dst = onnx_path(target)
        ckpt = load(target)
        export_onnx(ckpt.model, ckpt.sha256, ckpt.card(), dst)
        typer.echo(f"wrote {dst}", err=True)
