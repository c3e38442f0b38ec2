"""Work over many files, as the CLI runs it: output planning, torchrun sharding, one error channel.

Every mistake a user can make is a :class:`UserError` with one line that says what is wrong and
what to do; the CLI prints it. Outputs are planned and checked before any work starts, and written
through ``files.replacing`` (nothing partial, nothing of the user's overwritten without --force).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from . import audio
from .errors import UserError

Plan = list[tuple[Path, Path]]


def plan_outputs(
    inputs: list[Path], output: Path | None, force: bool, rename: Callable[[Path], Path],
    suffixes: set[str] | None = None, out_suffixes: tuple[str, ...] = (".wav", ".flac"),
) -> tuple[Plan, int]:
    """(input, output) pairs: ``rename(input)`` beside each input, or under ``-o DIR`` (keeping the
    folder structure of directory inputs), or ``-o FILE`` for one input; and how many were skipped.

    Every output is checked first: no collisions, no overwriting an input, nothing existing without
    ``force``. A rerun over a folder skips the inputs whose output exists (finished work stays).
    """
    items = audio.find_audio(inputs, suffixes)
    many = len(items) > 1 or any(p.is_dir() for p in inputs)
    if output is not None and many and output.exists() and not output.is_dir():
        raise UserError(f"{output}: several inputs need -o to be a directory")
    if output is None:
        plan = [(src, rename(src)) for src, _ in items]
    elif many:
        plan = [(src, output / rename(rel)) for src, rel in items]
    else:
        plan = [(items[0][0], output)]
    outs = [o for _, o in plan]
    if len(set(outs)) != len(outs):
        raise UserError("two inputs would write the same output; give them distinct names or use -o DIR")
    done = [(src, dst) for src, dst in plan if many and not force and dst.exists() and dst.is_file()]
    plan = [p for p in plan if p not in done]
    for src, dst in plan:
        if dst.resolve() == src.resolve():
            raise UserError(f"{dst}: output would overwrite its input; choose another name with -o")
        audio.check_writable(dst, force, out_suffixes)
    return plan, len(done)


def shard(plan: Plan) -> Plan:
    """This process's share of the files under torchrun (WORLD_SIZE, RANK); all of them otherwise."""
    world, rank = int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0))
    return [p for n, p in enumerate(plan) if n % world == rank]


def run_each(plan: Plan, work: Callable[[Path, Path], None], report: Callable[[str], None]) -> None:
    """Run ``work`` on every (input, output). With several files a bad one does not stop the rest:
    each failure is reported (``report``), and a final UserError says how many failed."""
    if len(plan) == 1:
        work(*plan[0])
        return
    failed = 0
    for src, dst in plan:
        try:
            work(src, dst)
        except UserError as e:
            failed += 1
            report(f"error: {e}")
    if failed:
        raise UserError(f"{failed} of {len(plan)} file(s) failed (listed above); the others are written; fix or "
                        "remove the failed ones and rerun: finished outputs are skipped")
