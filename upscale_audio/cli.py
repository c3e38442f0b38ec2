"""Command-line interface (typer): parse, validate, call the library, turn mistakes into one line.

    upscale-audio enhance INPUT... [-o OUT] [--method ardm|lmmse|bin-centre|zero] [--model PATH] ...
    upscale-audio bpd INPUT... [--model PATH] [--given-bits N] [--steps K|full] [--passes N] [--json]
    upscale-audio train DATA... --config FILE --run-dir DIR [--val DIR] [--set key=value]...
    upscale-audio info [--model PATH]
    upscale-audio export CHECKPOINT OUT
    upscale-audio compress INPUT... [-o OUT] [--preset fast|default|best] [--steps K] [--engine E] [--verify]  (.uad)
    upscale-audio decompress FILE.uad... [-o OUT]
"""

from __future__ import annotations

import json
import os
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
    lmmse = "lmmse"
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


class Engine(str, Enum):
    auto = "auto"
    torch = "torch"
    onnx = "onnx"


@app.command()
def enhance(
    inputs: Annotated[list[Path], typer.Argument(help="Audio files or directories (walked recursively).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file, or directory for several inputs.")] = None,
    method: Annotated[Method, typer.Option(help="ardm (the model), lmmse (a classical estimate inside each bin: a short-time Wiener filter and a local interpolator, no network), bin-centre or zero.")] = Method.ardm,
    model: Annotated[Path | None, typer.Option(help="Checkpoint (default: the bundled model that fits the input: "
                                                    "the low-byte one for 8..15-bit PCM, the interval one for G.711 and under 8 bits; a G.711 mean with "
                                                    "no --model is the lmmse estimate and its learned correction).")] = None,
    mode: Annotated[Mode, typer.Option(help="mean: the posterior mean (one call per open stage; best SNR and LSD; for G.711 with the bundled models the lmmse estimate, which beats it); sample: a draw of the low bits.")] = Mode.mean,
    steps: Annotated[str | None, typer.Option(help="Network calls per stage, or 'full' (default: the model's).")] = None,
    policy: Annotated[PolicyKind, typer.Option(help="Reveal schedule: dp (from the model's losses) or naive.")] = PolicyKind.dp,
    bits: Annotated[int | None, typer.Option("--bits", help="Known high bits (default: from the format, else detected).")] = None,
    raw: Annotated[Law | None, typer.Option("--raw", help="Inputs are headerless G.711 dumps (mono): ulaw or alaw.")] = None,
    rate: Annotated[int | None, typer.Option("--rate", help="Sample rate of --raw inputs (Hz).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the generation.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    chunk_seconds: Annotated[float | None, typer.Option(help="Chunk length in seconds (default: 48000 samples on CPU under ONNX Runtime, 16000 under PyTorch, 20 s on GPU).")] = None,
    engine: Annotated[Engine, typer.Option(help="What runs the network on CPU: auto (ONNX Runtime, without PyTorch, when the model has its .onnx beside it), torch or onnx.")] = Engine.auto,
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
                          raw.value if raw else None, rate, seed, chunk_seconds, force, model, engine.value)
    plan = _plan(inputs, output, force, lambda p: p.with_name(p.stem + ".16bit.wav"),
                 suffixes=None if raw is None else {".raw", ".ul", ".ulaw", ".al", ".alaw", ".g711", ".bin"})
    dev = None
    if method == Method.ardm:
        from .checkpoint import load_cached
        from .engine import pick_device
        from .enhance_file import engine_for

        dev = pick_device(device)
        if model is not None:
            load_cached(str(model), engine_for(engine.value, dev))  # a bad --model fails here, before any file

    def one(src: Path, dst: Path) -> None:
        line = restore_file(src, dst, opts, dev, lambda total, desc: _bar(total, desc, quiet),
                            lambda w: None if quiet else typer.echo(w, err=True))
        if not quiet:
            typer.echo(line, err=True)

    _each(jobs.shard(plan), one)


@app.command()
def bpd(
    inputs: Annotated[list[Path], typer.Argument(help="Audio files or directories.")],
    model: Annotated[Path | None, typer.Option(help="Checkpoint (default: the bundled model; with --given, the "
                                                     "bundled interval model when installed).")] = None,
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
    from .checkpoint import load, scoring_model
    from .engine import pick_device
    from .scoring import bits_per_sample, read_recordings

    k = _steps(steps)
    if passes < 1:
        fatal("--passes must be at least 1")
    if given_bits is not None and not 0 <= given_bits <= 15:
        fatal(f"--given-bits {given_bits}: must be between 0 and 15")
    if given is not None and given_bits is not None:
        fatal("--given and --given-bits exclude each other: choose what is known")
    ckpt = load(scoring_model(model, given.value if given else None))
    arrays = read_recordings(inputs)
    try:
        res = bits_per_sample(arrays, ckpt, given_bits=given_bits, given_law=given.value if given else None,
                              steps=k if k is not None else "full",
                              passes=passes, seed=seed, device=pick_device(device), naive=policy == PolicyKind.naive)
    except ValueError as e:
        fatal(str(e))
    import math

    d = {"bits_per_sample": res.bits_per_sample, "stderr": res.stderr if math.isfinite(res.stderr) else None,
         "samples": res.samples, "files": res.files, "passes": res.passes, "steps": res.steps,
         "given_bits": None if given else res.given_bits, "given": given.value if given else None,
         "model": str(ckpt.path), "model_sha256": ckpt.sha256[:16]}
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


def _exit_interrupted(what: str, code: int) -> NoReturn:
    """Say so and exit with ``code`` (temp files are gone: the exception unwound through them).
    os._exit: CPython exits by SIGINT instead of with our code when the interrupt once passed through
    C code that ran Python (seen about 1 run in 6 when Ctrl-C lands in the first network calls)."""
    typer.echo(f"interrupted ({what}): stopped; no partial output was left", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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
        _exit_interrupted("Ctrl-C", 130)
    except Interrupted as e:
        _exit_interrupted(signal.Signals(e.signum).name, 128 + e.signum)
    except Exit as e:
        if isinstance(e.__cause__, KeyboardInterrupt):  # typer turns Ctrl-C into Exit(130)
            _exit_interrupted("Ctrl-C", 130)
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
        _exit_interrupted("Ctrl-C", 130)
    sys.exit(rv if isinstance(rv, int) else 0)


from . import cli_tools  # noqa: E402,F401  (registers compress, decompress, compare, info, export)

if __name__ == "__main__":
    main()
