"""nox sessions: tests, lint, typecheck, bench.

The CPU build of torch is installed first (a plain `pip install torch` would fetch a CUDA build
of several GB); set UPSCALE_AUDIO_TORCH to pin another version.
"""

from __future__ import annotations

import os
import shutil

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
TORCH = os.environ.get("UPSCALE_AUDIO_TORCH", "torch==2.13.0")


def _install(session: nox.Session, extra: str) -> None:
    session.install(TORCH)
    session.install("-e", f".[{extra}]")


@nox.session
def tests(session: nox.Session) -> None:
    """Fast CPU tests (slow ones: `nox -s tests -- -m slow`)."""
    _install(session, "test")
    session.run("pytest", *(session.posargs or ["-q"]), env={"OMP_NUM_THREADS": "2"})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", "upscale_audio", "tests", "benchmarks", "scripts", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    _install(session, "dev")
    session.run("mypy", "upscale_audio")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: bit kernels, backbone throughput, and (with a corpus) restore quality and speed.

    The corpus comes from ../shared/corpus/make_corpus.sh; set UPSCALE_AUDIO_CORPUS if it is not in
    ~/.cache/upscale-audio-corpus/corpus, and UPSCALE_AUDIO_SAC to a Sac binary to put Sac beside
    the codec presets. Results go to bench-results/*.json.
    """
    _install(session, "dev")
    session.run("python", "benchmarks/bench_bits.py")
    session.run("python", "benchmarks/bench_throughput.py", "--config", "configs/default.toml")
    session.run("python", "benchmarks/bench_engine.py")
    corpus = os.environ.get("UPSCALE_AUDIO_CORPUS", os.path.expanduser("~/.cache/upscale-audio-corpus/corpus"))
    if os.path.isdir(corpus):
        session.run("python", "benchmarks/bench_process.py", "--corpus", corpus)
        session.run("python", "benchmarks/bench_process.py", "--corpus", corpus, "--g711", "ulaw",
                    "--out", "bench-results/process_g711.json")
        session.run("python", "benchmarks/bench_modes.py", "--corpus", corpus)
        session.run("python", "benchmarks/bench_g711.py", "--corpus", corpus, "--seconds", "60")
        session.run("python", "benchmarks/bench_depths.py", "--corpus", corpus)
        session.run("python", "benchmarks/bench_quantize.py", "--corpus", corpus)
        session.run("python", "benchmarks/bench_enhance.py", "--corpus", corpus, *session.posargs)
        have_codecs = shutil.which("flac") and shutil.which("wavpack")  # the classical baselines
        session.run("python", "benchmarks/bench_codec.py", "--corpus", corpus, "--files", "4",
                    *([] if have_codecs else ["--no-baselines"]))
        sac = os.environ.get("UPSCALE_AUDIO_SAC")  # a Sac binary (../shared/anchors/sac/build.sh), optional
        session.run("python", "benchmarks/bench_presets.py", "--corpus", corpus, "--best-seconds", "4",
                    *(["--sac", sac] if sac else []))
    else:
        session.log(f"no corpus at {corpus}: skipping the restore benchmark (see README)")
