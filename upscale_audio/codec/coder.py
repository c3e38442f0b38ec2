"""The block coder: a block's digits through rANS (constriction) with the reveal walk's probabilities.

Samples are coded stage by stage, most significant first. Inside a stage the walk's keyed order and
the stored policy split the positions into K segments; one network call per segment gives the
probabilities of all of its positions, and an ANS coder (``AnsCoder`` with
``Categorical(perfect=False)``) codes their digits. No bits-back is needed: the cost is exactly the
policy's code length (``bpd --steps K``, the same walk) plus the coder's rounding, well under 1 %.

ANS is a stack: symbols come out in the reverse order they went in. The decoder runs the calls
first to last (each call needs the digits of the earlier ones), so the encoder, which knows every
value, walks in reverse: stages, calls and windows reversed, and each window's positions through
``encode_reverse``. The network runs one window at a time (batch 1, fixed chunk length and
threads, the same engine: PyTorch or ONNX Runtime, recorded in the header), so both sides compute
bit-identical probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from .. import audio, policy
from ..runner import ChunkedRunner
from ..stages import StageMaps
from ..walk import Call, Orders, Walk, plan, row_keys
from .format import Header

Progress = Callable[[int], None]


def _categorical():  # type: ignore[no-untyped-def]
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


def coded_stages(u: np.ndarray, schedule: tuple[int, ...]) -> int:
    """How many stages (from the top) a block needs: stages whose bits are zero in every sample
    (the low byte of 8-bit material) are skipped."""
    zeros = 16 - audio.significant_bits(u - 32768)
    maps = StageMaps(schedule)
    return sum(1 for s in range(maps.S) if maps.lows[s] + maps.schedule[s] > zeros)


@contextmanager
def deterministic(threads: int) -> Iterator[None]:
    """Fixed thread count and deterministic kernels while coding (restored afterwards)."""
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def block_walk(runner: ChunkedRunner, header: Header, frame0: int, n_coded: int) -> tuple[Walk, list]:
    """The walk of a block that starts at ``frame0`` and the steps of its ``n_coded`` top stages."""
    orders = Orders(row_keys((header.seed,), header.channels), frame0)
    policies = {s: policy.dequantise(q) for s, q in enumerate(header.policy)}
    return Walk(runner, header.schedule, orders), plan(range(n_coded), policies)


def _probabilities(call: Call) -> np.ndarray:
    """The coder's float32 probabilities [n, W]: torch's softmax of PyTorch's logits (the codec codes
    all 16 bits: no mask), or ONNX Runtime's probabilities as its graph computed them."""
    if call.logits is None:
        assert call.given_probs is not None
        return np.ascontiguousarray(call.given_probs, dtype=np.float32)
    return torch.softmax(torch.from_numpy(call.logits), dim=-1).numpy().astype(np.float32)


def encode_block(runner: ChunkedRunner, header: Header, u: np.ndarray, frame0: int,
                 progress: Progress | None = None) -> tuple[np.ndarray, int, float]:
    """Code one block. u: int64 [C, n] offset binary.

    Returns (ANS words uint32 [m], coded stages, the model's exact cost in bits for this block).
    """
    import constriction

    n_coded = coded_stages(u, header.schedule)
    walk, steps = block_walk(runner, header, frame0, n_coded)
    coder = constriction.stream.stack.AnsCoder()
    cat = _categorical()
    cost = 0.0

    def write(call: Call) -> None:
        nonlocal cost
        digit = walk.maps.digit(u[call.row, call.pos], call.step.stage)
        coder.encode_reverse(digit.astype(np.int32), cat, _probabilities(call))
        cost += call.bits(digit)

    walk.run(u, steps, write, reverse=True, progress=progress)
    return np.asarray(coder.get_compressed(), dtype=np.uint32), n_coded, cost


def decode_block(runner: ChunkedRunner, header: Header, words: np.ndarray, frame0: int, n: int, n_coded: int,
                 progress: Progress | None = None) -> np.ndarray:
    """Inverse of :func:`encode_block`: int64 [C, n] offset binary."""
    import constriction

    walk, steps = block_walk(runner, header, frame0, n_coded)
    coder = constriction.stream.stack.AnsCoder(np.asarray(words, dtype=np.uint32))
    cat = _categorical()
    u = np.zeros((header.channels, n), dtype=np.int64)

    def read(call: Call) -> np.ndarray:
        return np.asarray(coder.decode(cat, _probabilities(call)), dtype=np.int64)

    walk.run(u, steps, read, progress=progress)
    if not coder.is_empty():
        raise ValueError("words left over")
    return u
