"""Where a network call runs: PyTorch, or ONNX Runtime without PyTorch (docs/DESIGN.md §4).

A *net* takes numpy arrays and returns numpy arrays (``runner.Net``): raw logits, or the
probabilities over each position's allowed digits (``call_probs``); the reveal walk, the choosers
and the chunking around it are numpy only. Two kinds:

* :class:`TorchNet` - the model itself (CPU or CUDA), giving either. ``bpd`` scores its logits.
* :class:`OnnxNet` - ``call_probs`` (features, trunk, output layer, the softmax over the allowed
  digits) exported to ONNX and run by ONNX Runtime on CPU. A restore with it never imports torch
  (1.7 s), so it starts in a fraction of a second (``benchmarks/bench_process.py``,
  ``benchmarks/bench_engine.py``, docs/RESULTS.md §15).

The codec runs either; its header records which, and the decoder runs the same engine with the
same threads, since it must reproduce the encoder's probabilities exactly.

A checkpoint ``X.pt`` uses ``X.onnx`` when that file lies beside it and was exported from that very
file: its metadata holds the checkpoint's sha256 and a *card* (config, stored policies, facts) from
which :func:`checkpoint.load` builds the model's description without reading ``X.pt`` with torch.
The bundled models ship one; ``upscale-audio export --onnx`` writes one for any other. The two
engines agree to about 1e-7 in the probabilities, not bit for bit, so a restore can differ in rare
samples (measured in docs/RESULTS.md §15); ``--engine torch`` gives PyTorch's output.
"""

from __future__ import annotations

import io
import json
import os
import queue
import re
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UserError
from .files import replacing

if TYPE_CHECKING:
    from .model import UpscaleWaveNet

ENGINES = ("auto", "torch", "onnx")
SHA_KEY = "upscale_audio.checkpoint_sha256"  # ONNX metadata: the checkpoint file it was exported from
CARD_KEY = "upscale_audio.card"  # ONNX metadata: JSON of what checkpoint.load needs without torch
KIND = "probs-1"  # what the ONNX graph computes: a whole call, numpy in, masked probabilities out
INPUTS = ("value", "revealed", "stage", "t_frac", "iv_lo", "iv_hi")


def onnx_path(checkpoint: Path) -> Path:
    """Where a checkpoint's ONNX network lives: beside it, same stem."""
    return checkpoint.with_suffix(".onnx")


def cpu_threads() -> int:
    """Threads for a CPU network: OMP_NUM_THREADS when set, else 0 (ONNX Runtime's default: one per
    physical core, as PyTorch's)."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() else 0


def _torch_built_with_cuda() -> bool:
    """Whether the installed torch is a CUDA build, read from torch/version.py without importing
    torch (1.7 s): a CPU-only build can never pick CUDA, so ``--device auto`` need not ask it."""
    spec = find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    version = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        text = version.read_text()
    except OSError:
        return True  # cannot tell: ask torch
    m = re.search(r"^cuda\b[^=\n]*=\s*(.+)$", text, re.M)
    return m is None or m.group(1).strip() not in ("None", "''", '""')


def pick_device(name: str = "auto") -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; under torchrun (LOCAL_RANK) one GPU per rank.
    Imports torch only when CUDA may be there. Raises UserError for an unavailable choice."""
    if name not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device {name!r}: choose auto, cpu or cuda")
    if name == "cpu" or (name == "auto" and not _torch_built_with_cuda()):
        return "cpu"
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if not torch.cuda.is_available():
        return "cpu"
    if "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    return "cuda"


def call_probs(model: UpscaleWaveNet, value: Any, revealed: Any, stage: Any, t_frac: Any, iv_lo: Any,
               iv_hi: Any, softmax: Any = None) -> Any:
    """A restore's network call: the probabilities over each position's allowed digits (torch
    tensors; float32 [B, T, W], 0 outside). The digits above the stage are value's (x_past and
    x_future share them), so the allowed digits are those the walk computes from u. ``TorchNet``
    runs this, and ``export_onnx`` exports it (``softmax``: ``ardm.masked_probs``, or its scripted
    form for the export)."""
    from .ardm import masked_probs
    from .stages import StageMaps

    allowed = StageMaps(model.schedule).allowed(value, iv_lo, iv_hi, stage)
    return (softmax or masked_probs)(model(value, revealed, stage, t_frac, iv_lo, iv_hi), *allowed)


class TorchNet:
    """A network call by the PyTorch model (bf16 autocast on CUDA; the input layer stays float32).

    ``gives="logits"``: raw logits (the codec takes torch's softmax of them, ``bpd`` their float64
    log-softmax); ``gives="probs"``: ``call_probs``, computed where the model runs (what a restore
    reads, like :class:`OnnxNet`)."""

    def __init__(self, model: UpscaleWaveNet, device: Any = "cpu", gives: str = "logits"):
        import torch

        if gives not in ("logits", "probs"):
            raise ValueError(f"gives={gives!r}: logits or probs")
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.autocast = self.device.type == "cuda"
        self.gives = gives

    def __call__(self, value: np.ndarray, revealed: np.ndarray, stage: np.ndarray, t_frac: np.ndarray,
                 iv_lo: np.ndarray | None = None, iv_hi: np.ndarray | None = None) -> np.ndarray:
        """See ``runner.Net``: numpy in, float32 [B, T, W] out (logits or probabilities: ``gives``)."""
        import torch

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

        lo = t(iv_lo) if iv_lo is not None else None
        hi = t(iv_hi) if iv_hi is not None else None
        args = (t(value), t(revealed.astype(np.float32)), t(stage), t(t_frac.astype(np.float32)))
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            if self.gives == "logits":
                out = self.model(*args, lo, hi)
            else:
                if lo is None or hi is None:
                    lo, hi = torch.zeros_like(args[0]), torch.full_like(args[0], 1 << 16)
                out = call_probs(self.model, *args, lo, hi)
        return out.float().cpu().numpy()


class OnnxNet:
    """An ONNX Runtime session of a whole network call (``export_onnx``), called like a TorchNet;
    it gives the probabilities over each position's allowed digits (the masked softmax runs in the
    graph, on both cores, instead of in numpy on one: 15-20 ms less per 16 000-sample window).

    ``lanes`` > 1: that many sessions, and calls from as many threads at once each take a free one
    (``runner.ChunkedRunner`` then keeps ``lanes`` windows in flight). A session's threads split a
    window's every op; lanes run whole windows side by side, which a small network's short ops use
    better (docs/RESULTS.md §17). A window's result does not depend on either."""

    gives = "probs"

    def __init__(self, path: Path, threads: int, lanes: int = 1):
        """``threads``: intra-op threads per session (0: ORT's default; the codec fixes them: the
        decoder must compute what the encoder did)."""
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = max(0, threads)  # 0: ORT's default
        so.inter_op_num_threads = 1
        so.log_severity_level = 3  # errors only
        # no busy-waiting between runs: numpy works between them, on the same cores
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.lanes = max(1, int(lanes))
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._free.put(self.session)
        for _ in range(self.lanes - 1):
            self._free.put(ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]))

    def __call__(self, value: np.ndarray, revealed: np.ndarray, stage: np.ndarray, t_frac: np.ndarray,
                 iv_lo: np.ndarray | None = None, iv_hi: np.ndarray | None = None) -> np.ndarray:
        """See ``runner.Net``, but the probabilities over each position's allowed digits (float32
        [B, T, W], 0 elsewhere), with one stage for the whole batch (what the reveal walk calls: the
        export computes only that stage's output rows). No known interval is the range [0, 65536).
        Safe to call from ``lanes`` threads at once."""
        if np.any(np.asarray(stage) != np.asarray(stage).flat[0]):
            raise ValueError("an ONNX network call takes one stage for the whole batch")
        if iv_lo is None or iv_hi is None:
            iv_lo, iv_hi = np.zeros_like(value), np.full_like(value, 1 << 16)
        feeds = {
            "value": np.ascontiguousarray(value, dtype=np.int64),
            "revealed": np.ascontiguousarray(revealed, dtype=np.float32),
            "stage": np.ascontiguousarray(stage, dtype=np.int64),
            "t_frac": np.ascontiguousarray(t_frac, dtype=np.float32),
            "iv_lo": np.ascontiguousarray(iv_lo, dtype=np.int64),
            "iv_hi": np.ascontiguousarray(iv_hi, dtype=np.int64),
        }
        session = self._free.get()
        try:
            (out,) = session.run(None, feeds)
        finally:
            self._free.put(session)
        return out


def restore_lanes() -> tuple[int, int]:
    """(lanes, threads per lane) of a restore's ONNX network: OMP_NUM_THREADS when set (one lane of
    that many threads), else two lanes sharing the CPUs this process may use. On this project's
    2-core machine two one-thread lanes restore 1.12x (the mean) to 1.26x (sampling) faster than one
    two-thread session (docs/RESULTS.md §17)."""
    threads = cpu_threads()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads or cpus < 2:
        return 1, threads
    return 2, cpus // 2


def open_onnx(checkpoint: Path, sha256: str, threads: int, lanes: int = 1
              ) -> tuple[OnnxNet | None, dict[str, Any], str]:
    """``checkpoint``'s ONNX network when it is usable: (net, card, ""); else (None, {}, why not)."""
    path = onnx_path(checkpoint)
    if not path.is_file():
        return None, {}, f"no ONNX network beside it ({path.name})"
    try:
        net = OnnxNet(path, threads, lanes)
    except ImportError:
        return None, {}, "onnxruntime is not installed (pip install onnxruntime)"
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own kinds for unreadable files
        return None, {}, f"{path.name} is not a readable ONNX model ({type(e).__name__}); delete or re-export it"
    props = net.session.get_modelmeta().custom_metadata_map
    if props.get(SHA_KEY) != sha256:
        return None, {}, f"{path.name} was exported from another checkpoint"
    try:
        card = json.loads(props.get(CARD_KEY, ""))
    except ValueError:
        card = None
    if not isinstance(card, dict) or card.get("kind") != KIND:
        return None, {}, f"{path.name} was written by an older upscale-audio"
    return net, card, ""


def check_engine(engine: str) -> None:
    """UserError unless ``engine`` is one of ENGINES."""
    if engine not in ENGINES:
        raise UserError(f"--engine {engine}: choose one of {', '.join(ENGINES)}")


def export_onnx(model: UpscaleWaveNet, checkpoint_sha256: str, card: dict[str, Any], dst: Path) -> None:
    """Write ``model``'s whole network call as ONNX (batch and length dynamic) with the checkpoint's
    sha256 and ``card`` in its metadata. Needs the ``onnx`` package (``pip install onnx``); the
    runtime needs only onnxruntime. Models with a classical prior (numba) run on PyTorch only."""
    try:
        import onnx
    except ImportError:
        raise UserError("exporting an ONNX network needs the onnx package: pip install onnx") from None
    import warnings

    import torch

    if model.cfg.prior != "none":
        raise UserError("a model with a classical prior (model.prior) runs on PyTorch only; it has no ONNX export")

    from .ardm import masked_probs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated, but it is what keeps a branch
        softmax = torch.jit.script(masked_probs)  # its all-allowed shortcut becomes an If node

    class Call(torch.nn.Module):
        def __init__(self, m: UpscaleWaveNet):
            super().__init__()
            self.m = m

        def forward(self, value: torch.Tensor, revealed: torch.Tensor, stage: torch.Tensor, t_frac: torch.Tensor,
                    iv_lo: torch.Tensor, iv_hi: torch.Tensor) -> torch.Tensor:
            return call_probs(self.m, value, revealed, stage, t_frac, iv_lo, iv_hi, softmax)

    model = model.eval()
    B, T = 1, 4096
    stage = torch.full((B,), model.stages[-1], dtype=torch.long)
    args = (torch.full((B, T), 32768, dtype=torch.long), torch.zeros(B, T), stage, torch.zeros(B),
            torch.zeros(B, T, dtype=torch.long), torch.full((B, T), 1 << 16, dtype=torch.long))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Call(model), args, buf, input_names=list(INPUTS), output_names=["probs"],  # type: ignore[arg-type]
                          opset_version=17, dynamo=False,
                          dynamic_axes={**{k: {0: "B", 1: "T"} for k in ("value", "revealed", "iv_lo", "iv_hi")},
                                        "stage": {0: "B"}, "t_frac": {0: "B"}, "probs": {0: "B", 1: "T"}})
    proto = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(proto, {SHA_KEY: checkpoint_sha256, CARD_KEY: json.dumps({**card, "kind": KIND})})
    with replacing(dst) as tmp:
        onnx.save(proto, tmp)
