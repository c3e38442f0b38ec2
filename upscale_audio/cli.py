"""Command-line interface (typer): parse, validate, call the library, turn mistakes into one line.

    upscale-audio enhance INPUT... [-o OUT] [--method ardm|bin-centre|zero] [--model PATH] ...
    upscale-audio bpd INPUT... [--model PATH] [--given-bits N] [--steps K|full] [--passes N] [--json]
    upscale-audio train DATA... --config FILE --run-dir DIR [--val DIR] [--set key=value]...
    upscale-audio info [--model PATH]
    upscale-audio export CHECKPOINT OUT
    upscale-audio compress INPUT... [-o OUT] [--steps K] [--verify]    (lossless, .uad)
    upscale-audio decompress FILE.uad... [-o OUT]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from .errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Restore lost bit depth in audio (8-bit or any low-bit in, 16-bit out) with an Upscale ARDM.",
    pretty_exceptions_enable=False,
)


class Method(str, Enum):
    ardm = "ardm"
    bin_centre = "bin-centre"
    zero = "zero"


class Mode(str, Enum):
    sample = "sample"
    mean = "mean"


class PolicyKind(str, Enum):
    dp = "dp"
    naive = "naive"


def fatal(msg: str) -> NoReturn:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def _steps(text: str | None) -> int | str | None:
    if text is None or text == "full":
        return text
    try:
        k = int(text)
    except ValueError:
        fatal(f"--steps {text!r}: give a positive number of network calls per stage, or 'full'")
    if k < 1:
        fatal(f"--steps {k}: must be at least 1")
    return k


def _bar(total: int, desc: str, quiet: bool):  # type: ignore[no-untyped-def]
    """A progress bar over network calls on stderr (off when quiet or not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="call", disable=quiet or not sys.stderr.isatty(), leave=False)


def _plan(inputs: list[Path], output: Path | None, force: bool, rename: Callable[[Path], Path],
          suffixes: set[str] | None = None, out_suffixes: tuple[str, ...] = (".wav", ".flac")) -> list[tuple[Path, Path]]:
    from . import jobs

    plan, skipped = jobs.plan_outputs(inputs, output, force, rename, suffixes, out_suffixes)
    if skipped:  # a rerun of a folder: what is finished stays, the rest is done
        typer.echo(f"skipping {skipped} of {len(plan) + skipped} file(s) whose output exists (use --force to redo "
                   "them)", err=True)
    return plan


def _each(plan: list[tuple[Path, Path]], work: Callable[[Path, Path], None]) -> None:
    from . import jobs

    jobs.run_each(plan, work, lambda line: typer.echo(line, err=True))


class Law(str, Enum):
    ulaw = "ulaw"
    alaw = "alaw"


@app.command()
def enhance(
    inputs: Annotated[list[Path], typer.Argument(help="Audio files or directories (walked recursively).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file, or directory for several inputs.")] = None,
    method: Annotated[Method, typer.Option(help="ardm (the model), bin-centre or zero.")] = Method.ardm,
    model: Annotated[Path | None, typer.Option(help="Checkpoint (default: the bundled model).")] = None,
    mode: Annotated[Mode, typer.Option(help="mean: the posterior mean (one call per open stage; best SNR and LSD); sample: a draw of the low bits.")] = Mode.mean,
    steps: Annotated[str | None, typer.Option(help="Network calls per stage, or 'full' (default: the model's).")] = None,
    policy: Annotated[PolicyKind, typer.Option(help="Reveal schedule: dp (from the model's losses) or naive.")] = PolicyKind.dp,
    bits: Annotated[int | None, typer.Option("--bits", help="Known high bits (default: from the format, else detected).")] = None,
    raw: Annotated[Law | None, typer.Option("--raw", help="Inputs are headerless G.711 dumps (mono): ulaw or alaw.")] = None,
    rate: Annotated[int | None, typer.Option("--rate", help="Sample rate of --raw inputs (Hz).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the generation.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    chunk_seconds: Annotated[float | None, typer.Option(help="Chunk length in seconds (default: 16000 samples on CPU, 20 s on GPU).")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summaries.")] = False,
) -> None:
    """Restore low-bit audio (8-bit PCM, mu-law, A-law, ...) to 16 bits. Known values never change."""
    import math

    if bits is not None and not 1 <= bits <= 15:
        fatal(f"--bits {bits}: must be between 1 and 15 (the known top bits; 16 leaves nothing to restore)")
    if raw is not None and (rate is None or rate < 1):
        fatal("--raw needs --rate R, the sample rate of the headerless G.711 data (e.g. --rate 8000)")
    if raw is None and rate is not None:
        fatal("--rate is only for --raw inputs (other files carry their rate)")
    if raw is not None and bits is not None:
        fatal("--raw and --bits exclude each other: G.711 data knows its own intervals")
    if chunk_seconds is not None and not (math.isfinite(chunk_seconds) and chunk_seconds > 0):
        fatal(f"--chunk-seconds {chunk_seconds}: give a positive number of seconds, e.g. --chunk-seconds 10")
    from . import jobs
    from .enhance_file import RestoreOptions, restore_file

    opts = RestoreOptions(method.value, mode.value, _steps(steps), policy == PolicyKind.naive, bits,
                          raw.value if raw else None, rate, seed, chunk_seconds, force)
    plan = _plan(inputs, output, force, lambda p: p.with_name(p.stem + ".16bit.wav"),
                 suffixes=None if raw is None else {".raw", ".ul", ".ulaw", ".al", ".alaw", ".g711", ".bin"})
    lm, dev = None, None
    if method == Method.ardm:
        from .checkpoint import load
        from .runner import pick_device

        lm, dev = load(model), pick_device(device)

    def one(src: Path, dst: Path) -> None:
        line = restore_file(src, dst, opts, lm, dev, lambda total, desc: _bar(total, desc, quiet),
                            lambda w: None if quiet else typer.echo(w, err=True))
        if not quiet:
            typer.echo(line, err=True)

    _each(jobs.shard(plan), one)


@app.command()
def bpd(
    inputs: Annotated[list[Path], typer.Argument(help="Audio files or directories.")],
    model: Annotated[Path | None, typer.Option(help="Checkpoint (default: the bundled model).")] = None,
    given_bits: Annotated[int | None, typer.Option(help="Score only the bits below the top N (default: the model's).")] = None,
    given: Annotated[Law | None, typer.Option("--given", help="Score what G.711 coding (ulaw or alaw) of each sample leaves open.")] = None,
    steps: Annotated[str, typer.Option(help="'full' (stochastic ELBO) or K (exact cost of the K-call policy).")] = "full",
    passes: Annotated[int, typer.Option(help="ELBO draws to average (--steps full).")] = 4,
    policy: Annotated[PolicyKind, typer.Option(help="dp or naive (with --steps K).")] = PolicyKind.dp,
    seed: Annotated[int, typer.Option(help="Seed of the draws / order.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Bits per sample of recordings under the model (their likelihood), with a standard error."""
    from .checkpoint import load
    from .runner import pick_device
    from .scoring import bits_per_sample, read_recordings

    k = _steps(steps)
    if passes < 1:
        fatal("--passes must be at least 1")
    if given_bits is not None and not 0 <= given_bits <= 15:
        fatal(f"--given-bits {given_bits}: must be between 0 and 15")
    if given is not None and given_bits is not None:
        fatal("--given and --given-bits exclude each other: choose what is known")
    lm = load(model)
    arrays = read_recordings(inputs)
    try:
        res = bits_per_sample(arrays, lm, given_bits=given_bits, given_law=given.value if given else None,
                              steps=k if k is not None else "full",
                              passes=passes, seed=seed, device=pick_device(device), naive=policy == PolicyKind.naive)
    except ValueError as e:
        fatal(str(e))
    import math

    d = {"bits_per_sample": res.bits_per_sample, "stderr": res.stderr if math.isfinite(res.stderr) else None,
         "samples": res.samples, "files": res.files, "passes": res.passes, "steps": res.steps,
         "given_bits": None if given else res.given_bits, "given": given.value if given else None,
         "model": str(lm.path), "model_sha256": lm.sha256[:16]}
    if as_json:
        typer.echo(json.dumps(d))
    else:
        if res.steps != "full":
            se = " (exact, fixed order)"
        elif math.isfinite(res.stderr):
            se = f" +- {res.stderr:.4f} (s.e., {res.passes} passes)"
        else:
            se = " (one pass: no error bar; use --passes 2 or more)"
        what = (f"what G.711 {given.value} leaves open" if given else
                f"the {16 - res.given_bits} bits below the top {res.given_bits}")
        typer.echo(f"{res.bits_per_sample:.4f} bits/sample{se} for {what}; {res.samples} samples in "
                   f"{res.files} file(s); steps {res.steps}")


@app.command()
def train(
    data: Annotated[list[Path], typer.Argument(help="Folders (or files) of 16-bit training audio.")],
    config: Annotated[Path, typer.Option(help="TOML config (see configs/).")],
    run_dir: Annotated[Path, typer.Option(help="Run directory: checkpoints, log, resume.")],
    val: Annotated[list[Path] | None, typer.Option(help="Held-out audio for validation bpd.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config value: section.key=value.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop at this step (0: write the untrained model).")] = None,
    max_minutes: Annotated[float | None, typer.Option(help="Stop after this many minutes of training.")] = None,
    init: Annotated[Path | None, typer.Option(help="Fine-tune: start from this checkpoint's weights.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Train a model (resumes automatically from RUN_DIR/latest.pt; works under torchrun)."""
    from .config import load_config
    from .train import train as run_train

    overrides = list(set_ or [])
    if max_steps is not None:
        if max_steps < 0:
            fatal("--max-steps must be >= 0")
        overrides.append(f"train.max_steps={max_steps}")
    cfg = load_config(config, overrides)
    for d in data + list(val or []):
        if not d.exists():
            fatal(f"{d}: no such file or directory")
    if run_dir.exists() and not run_dir.is_dir():
        fatal(f"--run-dir {run_dir}: is a file; give a folder (new, or a run to resume)")
    if max_minutes is not None and not max_minutes > 0:
        fatal(f"--max-minutes {max_minutes}: must be a positive number of minutes")
    rec = run_train(cfg, data, run_dir, list(val or []) or None, max_minutes, quiet, init)
    if not quiet:
        typer.echo(f"done: step {rec.get('step')}, checkpoint {run_dir / 'latest.pt'}", err=True)


@app.command()
def compress(
    inputs: Annotated[list[Path], typer.Argument(help="Audio files or directories (walked recursively).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output .uad file, or directory for several inputs.")] = None,
    model: Annotated[Path | None, typer.Option(help="Checkpoint (default: the bundled model).")] = None,
    steps: Annotated[int | None, typer.Option(help="Network calls per stage (default: the model's).")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Decode each file after coding and compare.")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summaries.")] = False,
) -> None:
    """Lossless compression of 16-bit (or 8-bit) audio into .uad files with the model and rANS."""
    from . import codec
    from .checkpoint import load

    if steps is not None and steps < 1:
        fatal(f"--steps {steps}: must be at least 1")
    plan = _plan(inputs, output, force, lambda p: p.with_suffix(codec.SUFFIX), out_suffixes=(codec.SUFFIX,))
    lm = load(model)
    k = steps or lm.recommended_steps()

    def one(src: Path, dst: Path) -> None:
        st = codec.compress_path(src, dst, lm, k, verify_after=verify, force=force,
                                 bar=lambda total, desc: _bar(total, desc, quiet))
        if not quiet:
            typer.echo(f"{src} -> {dst}: {st.bits_per_sample:.3f} bits/sample ({st.bytes} bytes, model cost "
                       f"{st.model_bits / st.samples:.3f}), K={k}, {st.seconds:.1f} s, {st.realtime:.2f}x real time"
                       + (", verified" if verify else ""), err=True)

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
    lm = load(model)

    def one(src: Path, dst: Path) -> None:
        h, st = codec.decompress_path(src, dst, lm, force=force, bar=lambda total, desc: _bar(total, desc, quiet))
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
    """Print the model card: size, receptive field, schedule, training data, stored policies."""
    from .checkpoint import load, read_raw

    lm = load(model)
    assert lm.path is not None
    cfg, m = lm.config, lm.model
    rf = m.receptive_field()
    rates = list(cfg.data.sample_rates) or [16000]
    meta = lm.meta
    lines = [
        f"model:            {lm.path} (sha256 {lm.sha256[:16]})",
        f"parameters:       {m.num_parameters():,}",
        f"backbone:         {cfg.model.blocks} blocks x {cfg.model.channels} channels, dilation cycle "
        f"{cfg.model.dilation_cycle}, features '{cfg.model.features}'",
        f"receptive field:  {rf} samples (" + ", ".join(f"{1000 * rf / r:.1f} ms at {r} Hz" for r in rates) + ")",
        f"schedule:         {list(cfg.ardm.schedule)} (stages modelled: {list(m.stages)})",
        f"known bits:       {cfg.ardm.known_bits} (models the {16 - cfg.ardm.known_bits} bits below)",
        f"training data:    {meta.get('files', '?')} files, {float(meta.get('data_seconds', 0)) / 60:.1f} min, "
        f"rates {meta.get('sample_rates', '?')}",
        f"training:         {meta.get('steps', '?')} steps, {float(meta.get('train_seconds', 0)) / 60:.1f} min"
        + (f", initialised from {meta['init']}" if meta.get("init") else ""),
        f"tracked ELBO:     {float(meta.get('tracked_bits', float('nan'))):.3f} bits/sample",
        f"default steps:    {lm.recommended_steps()} calls per stage",
        "stored policies:  " + ", ".join(
            f"K={K}: {v['expected_bits']:.3f}" for K, v in read_raw(lm.path).get("policies", {}).items()) + " (expected bits/sample)",
    ]
    typer.echo("\n".join(lines))


@app.command("export")
def export_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Training checkpoint (e.g. RUN_DIR/latest.pt).")],
    out: Annotated[Path, typer.Argument(help="Where to write the inference-only model.")],
    force: Annotated[bool, typer.Option("--force", "-f")] = False,
) -> None:
    """Strip training state from a checkpoint (EMA weights, config, policies remain)."""
    from .checkpoint import export

    export(checkpoint, out, force)


class Interrupted(BaseException):
    """A termination signal (SIGTERM, SIGHUP) turned into an exception, so that temp files are
    removed on the way out exactly as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _signals_raise() -> None:
    import signal

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C even where the shell ignored it


def main() -> None:
    """Entry point: run the app; every mistake or fault becomes one line on stderr and a non-zero
    exit (2; 128 + N for signal N, 130 for Ctrl-C), with nothing partial left behind."""
    import signal

    from typer.exceptions import Abort, Exit, TyperException

    _signals_raise()
    for stream in (sys.stdout, sys.stderr):  # file names that are not valid UTF-8 still print
        try:
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass
    try:
        rv = app(standalone_mode=False)
    except UserError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except (KeyboardInterrupt, Abort):
        typer.echo("interrupted (Ctrl-C): stopped; no partial output was left", err=True)
        sys.exit(130)
    except Interrupted as e:
        typer.echo(f"interrupted ({signal.Signals(e.signum).name}): stopped; no partial output was left", err=True)
        sys.exit(128 + e.signum)
    except Exit as e:
        if isinstance(e.__cause__, KeyboardInterrupt):  # typer turns Ctrl-C into Exit(130)
            typer.echo("interrupted (Ctrl-C): stopped; no partial output was left", err=True)
        sys.exit(e.exit_code)
    except TyperException as e:  # usage errors: the usage line and the message, as in standalone mode
        show = getattr(e, "show", None)
        if show is not None:
            show()
        else:
            typer.echo(f"error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except OSError as e:  # disk full, permissions, a vanished folder: the system's words, one line
        where = f"{e.filename}: " if e.filename else ""
        typer.echo(f"error: {where}{e.strerror or e}; free some space or choose another output with -o", err=True)
        sys.exit(2)
    if rv == 130:  # typer returns Ctrl-C as exit code 130
        typer.echo("interrupted (Ctrl-C): stopped; no partial output was left", err=True)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
