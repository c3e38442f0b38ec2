"""Where the network's trunk runs at inference on CPU: PyTorch, or ONNX Runtime (docs/DESIGN.md §4).

The trunk (:meth:`model.UpscaleWaveNet.trunk`: input conv, residual blocks, head; nearly all of a
call's arithmetic) runs 1.7-2x faster under ONNX Runtime than under PyTorch on our 2-core CPU
(``benchmarks/bench_engine.py``; a whole mean restore 1.37x, docs/RESULTS.md §13). A checkpoint
``X.pt`` uses it when ``X.onnx`` lies beside it and was exported from that very file (the ONNX
metadata holds its sha256): the bundled models ship one, ``upscale-audio export --onnx`` writes one
for any other. The features, the step embedding, the
output layer and everything after it stay in PyTorch, so the composition of a call has one owner
(``UpscaleWaveNet.forward``).

The two engines agree to about 1e-5 in the logits, not bit for bit, so a restore can differ in
rare samples (measured in docs/RESULTS.md); ``--engine torch`` gives PyTorch's output. The codec
always uses PyTorch: its decoder must reproduce the encoder's probabilities exactly.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from .errors import UserError
from .files import replacing
from .model import Trunk, UpscaleWaveNet

ENGINES = ("auto", "torch", "onnx")
SHA_KEY = "upscale_audio.checkpoint_sha256"  # ONNX metadata: the checkpoint file it was exported from


def onnx_path(checkpoint: Path) -> Path:
    """Where a checkpoint's ONNX trunk lives: beside it, same stem."""
    return checkpoint.with_suffix(".onnx")


class OnnxTrunk:
    """An ONNX Runtime session of a model's trunk, called like :meth:`UpscaleWaveNet.trunk`."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, threads)
        so.inter_op_num_threads = 1
        so.log_severity_level = 3  # errors only
        # no busy-waiting between runs: PyTorch's threads work between them, on the same cores
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.checkpoint_sha256 = self.session.get_modelmeta().custom_metadata_map.get(SHA_KEY, "")

    def __call__(self, feats: torch.Tensor, value: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """feats [B, F, T], value long [B, T], temb [B, 4C] -> z float32 [B, C, T]."""
        (z,) = self.session.run(None, {
            "feats": feats.detach().float().cpu().numpy(),
            "value": value.detach().cpu().numpy().astype(np.int64, copy=False),
            "temb": temb.detach().float().cpu().numpy(),
        })
        return torch.from_numpy(z)


def load_trunk(checkpoint: Path | None, sha256: str, engine: str, threads: int) -> Trunk | None:
    """The trunk a CPU restore runs: an :class:`OnnxTrunk` (engine ``onnx``, or ``auto`` when the
    checkpoint has a matching ``.onnx`` beside it), None for PyTorch. ``onnx`` without one is an
    error that says how to make one."""
    if engine not in ENGINES:
        raise UserError(f"--engine {engine}: choose one of {', '.join(ENGINES)}")
    if engine == "torch" or checkpoint is None:
        return None
    path = onnx_path(checkpoint)
    if not path.is_file():
        if engine == "onnx":
            raise UserError(f"{checkpoint}: no ONNX trunk beside it ({path.name}); write one with "
                            f"'upscale-audio export --onnx {checkpoint}', or use --engine torch")
        return None
    try:
        trunk = OnnxTrunk(path, threads)
    except ImportError:
        if engine == "onnx":
            raise UserError("--engine onnx needs onnxruntime (pip install onnxruntime); or use --engine torch") \
                from None
        return None
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own kinds for unreadable files
        raise UserError(f"{path}: not a readable ONNX model ({type(e).__name__}); delete it or re-export it with "
                        f"'upscale-audio export --onnx {checkpoint}'") from None
    if trunk.checkpoint_sha256 != sha256:
        if engine == "onnx":
            raise UserError(f"{path}: exported from another checkpoint than {checkpoint.name}; re-export it with "
                            f"'upscale-audio export --onnx {checkpoint}'")
        return None  # stale: PyTorch gives this checkpoint's own output
    return trunk


class _TrunkModule(torch.nn.Module):
    """The trunk as a module of its own (what the exporter traces)."""

    def __init__(self, model: UpscaleWaveNet):
        super().__init__()
        self.model = model

    def forward(self, feats: torch.Tensor, value: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return self.model.trunk(feats, value, temb)


def export_onnx(model: UpscaleWaveNet, checkpoint_sha256: str, dst: Path) -> None:
    """Write ``model``'s trunk as ONNX (batch and length dynamic) with the checkpoint's sha256 in its
    metadata. Needs the ``onnx`` package (``pip install onnx``); the runtime needs only onnxruntime."""
    try:
        import onnx
    except ImportError:
        raise UserError("exporting an ONNX trunk needs the onnx package: pip install onnx") from None
    import warnings

    model = model.eval()
    B, T = 1, 4096
    feats = torch.zeros(B, model.input_conv.in_channels, T)
    value = torch.zeros(B, T, dtype=torch.long)
    temb = torch.zeros(B, 4 * model.cfg.channels)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_TrunkModule(model), (feats, value, temb), buf,  # type: ignore[arg-type]
                          input_names=["feats", "value", "temb"],
                          output_names=["z"], opset_version=17, dynamo=False,
                          dynamic_axes={"feats": {0: "B", 2: "T"}, "value": {0: "B", 1: "T"}, "temb": {0: "B"},
                                        "z": {0: "B", 2: "T"}})
    proto = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(proto, {SHA_KEY: checkpoint_sha256})
    with replacing(dst) as tmp:
        onnx.save(proto, tmp)
