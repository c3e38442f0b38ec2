"""Checkpoints: one ``torch.save`` file with the config embedded, loadable with ``weights_only=True``.

Contents (plain tensors and JSON-like values only)::

    format, format_version, package_version, config (RunConfig dict),
    model (EMA weights of the unwrapped module), tracker (per-step losses), policies,
    meta (training data, steps, wall time)
    + training state (raw weights, optimizer, step, rng), removed by ``export``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .config import RunConfig
from .engine import TorchNet, check_engine, open_onnx, restore_lanes
from .errors import UserError
from .files import replacing
from .runner import Net
from .stages import StageMaps

if TYPE_CHECKING:  # torch is imported only where a model is built, saved or read from a .pt
    import torch

    from .engine import OnnxNet
    from .model import UpscaleWaveNet
    from .policy import StepLossTracker

FORMAT = "upscale_audio.checkpoint"
FORMAT_VERSION = 1
DEFAULT_BUDGETS = (1, 2, 4, 8, 16, 32, 64)
MODELS_DIR = Path(__file__).parent / "models"
BUNDLED = MODELS_DIR / "default.pt"  # all 16 bits: bpd, compress, and any input no other bundled model takes
BUNDLED_LOW_BYTE = MODELS_DIR / "lowbyte.pt"  # the low byte given the high byte: linear input of 8..15 bits
# the same for --mode mean: a quarter of the cost per sample, a better posterior mean, a worse likelihood
BUNDLED_LOW_BYTE_MEAN = MODELS_DIR / "lowbyte_mean.pt"
# known intervals the low-byte model cannot take (G.711 bins, linear depths under 8): trained on them,
# it sees each interval's place and width
BUNDLED_INTERVALS = MODELS_DIR / "intervals.pt"


@dataclass
class LoadedModel:
    """A model ready for inference, with what the checkpoint says about it.

    Loaded from the checkpoint file with torch, or (``load`` with an engine other than torch) from
    the card of its ONNX network without torch; then ``model`` and ``tracker`` read the checkpoint
    the first time something asks for them (``bpd``, the codec, a policy not stored)."""

    config: RunConfig
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    sha256: str = ""
    stored_policies: dict[str, Any] = field(default_factory=dict)  # make_checkpoint's policy_table
    parameters: int = 0
    onnx: OnnxNet | None = field(default=None, repr=False)  # the ONNX Runtime network, when loaded from its card
    _model: UpscaleWaveNet | None = field(default=None, repr=False)
    _tracker: StepLossTracker | None = field(default=None, repr=False)

    @property
    def model(self) -> UpscaleWaveNet:
        return self._weights()[0]

    @property
    def tracker(self) -> StepLossTracker:
        return self._weights()[1]

    def _weights(self) -> tuple[UpscaleWaveNet, StepLossTracker]:
        """The model and its loss tracker, read from the checkpoint with torch on first use."""
        if self._model is None or self._tracker is None:
            if self.path is None:
                raise UserError("this model has no checkpoint file to read its weights from")
            full = load(self.path, "torch")
            self._model, self._tracker = full._model, full._tracker
        assert self._model is not None and self._tracker is not None
        return self._model, self._tracker

    @property
    def maps(self) -> StageMaps:
        return StageMaps(self.config.ardm.schedule)

    @property
    def known_bits(self) -> int:
        return self.config.ardm.known_bits

    @property
    def stages(self) -> tuple[int, ...]:
        """The stages the model covers (those its known bits leave open)."""
        return tuple(self.maps.modelled_stages(self.known_bits))

    @property
    def halo(self) -> int:
        """Samples a network call needs on each side of an output sample."""
        return self.config.model.receptive_field() // 2

    def net(self, device: Any = "cpu") -> tuple[Net, str]:
        """What computes a restore's network calls on ``device`` (probabilities over the allowed
        digits, ``engine.call_probs``), and its engine's name: ONNX Runtime when the model was
        loaded from its ONNX card and the device is the CPU, else PyTorch."""
        if self.onnx is not None and str(device) == "cpu":
            return self.onnx, "onnx"
        return TorchNet(self.model, device, gives="probs"), "torch"

    def policies(self, K: int, naive: bool = False) -> dict[int, np.ndarray]:
        """Policy fractions for a budget of K calls per stage, for every stage the model covers: the
        checkpoint's stored DP result for its budgets (the same numbers), else the DP run now."""
        stored = self.stored_policies.get(str(K), {}).get("fractions", {})
        if not naive and all(str(s) in stored for s in self.stages):
            return {s: np.asarray(stored[str(s)], dtype=np.float64) for s in self.stages}
        from . import policy

        return {s: policy.stage_policy(self.tracker.losses(s), K, naive) for s in self.stages}

    def recommended_steps(self) -> int:
        return int(self.meta.get("recommended_steps", 16))

    def card(self) -> dict[str, Any]:
        """What ``load`` needs to describe this model without torch (stored in its ONNX network)."""
        return {"config": self.config.to_dict(), "meta": self.meta, "policies": self.stored_policies,
                "parameters": self.parameters, "package_version": __version__}


def atomic_save(obj: dict[str, Any], path: Path) -> None:
    """torch.save to a temp file in the same folder, then rename over ``path``."""
    import torch

    with replacing(path) as tmp:
        torch.save(obj, tmp)


def policy_table(cfg: RunConfig, tracker: StepLossTracker) -> dict[str, Any]:
    """DP policies and their expected costs (bits per sample, summed over stages) per budget."""
    from . import policy

    maps = StageMaps(cfg.ardm.schedule)
    out: dict[str, Any] = {}
    for K in DEFAULT_BUDGETS:
        fr, cost = {}, 0.0
        for s in maps.modelled_stages(cfg.ardm.known_bits):
            L = tracker.losses(s)
            fr[str(s)] = policy.stage_policy(L, K).tolist()
            sortedL = np.sort(L)[::-1]
            starts = np.floor(np.asarray(fr[str(s)]) * len(L) + 1e-9).astype(np.int64)
            cost += policy.policy_cost(sortedL, starts) / len(L)
        out[str(K)] = {"fractions": fr, "expected_bits": cost}
    return out


def make_checkpoint(
    cfg: RunConfig, ema_state: dict[str, torch.Tensor], tracker: StepLossTracker, meta: dict[str, Any],
    training: dict[str, Any] | None = None,
) -> dict[str, Any]:
    table = policy_table(cfg, tracker)
    full = sum(float(np.mean(tracker.losses(s))) for s in StageMaps(cfg.ardm.schedule).modelled_stages(
        cfg.ardm.known_bits))
    # recommended budget: the smallest K whose expected cost is within 1% of the full-budget ELBO
    rec = next((int(K) for K, v in table.items() if v["expected_bits"] <= full * 1.01), DEFAULT_BUDGETS[-1])
    weights = {k: v.detach().cpu().clone() for k, v in ema_state.items()}
    ckpt: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "config": cfg.to_dict(),
        "model": weights,
        "weights_sha256": weights_digest(weights),
        "tracker": tracker.state_dict(),
        "policies": table,
        "meta": {**meta, "recommended_steps": rec, "tracked_bits": full},
    }
    if training is not None:
        ckpt["training"] = training
    return ckpt


def weights_digest(weights: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the weights' names, shapes, dtypes and bytes (stored in and checked on load)."""
    import torch

    h = hashlib.sha256()
    for k in sorted(weights):
        t = weights[k].detach().cpu().contiguous()
        h.update(f"{k}|{tuple(t.shape)}|{t.dtype}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def export(src: Path, dst: Path, force: bool = False) -> None:
    """Write a copy of a checkpoint without training state (for shipping)."""
    if dst.exists() and not force:
        raise UserError(f"{dst}: exists; use --force to overwrite")
    ckpt = read_raw(src)
    ckpt.pop("training", None)
    atomic_save(ckpt, dst)


def read_raw(path: Path) -> dict[str, Any]:
    """Load and validate the checkpoint dict (no model built)."""
    import torch

    if not path.is_file():
        raise UserError(f"{path}: no such model file; pass a checkpoint written by 'upscale-audio train'")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for foreign files
        raise UserError(f"{path}: not an upscale-audio checkpoint ({type(e).__name__}); "
                        "pass a file written by 'upscale-audio train'") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path}: not an upscale-audio checkpoint; pass a file written by 'upscale-audio train'")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path}: checkpoint format version {ckpt.get('format_version')} is not supported by "
                        f"upscale-audio {__version__} (reads version {FORMAT_VERSION}); upgrade the package")
    for key, kind in (("config", dict), ("model", dict), ("tracker", dict)):
        if not isinstance(ckpt.get(key), kind):
            raise UserError(f"{path}: damaged checkpoint (no valid '{key}' entry); re-export it or use another --model")
    tr = ckpt["tracker"]
    if not all(isinstance(tr.get(k), torch.Tensor) for k in ("values", "counts")) or \
            tr["values"].shape != tr["counts"].shape or tr["values"].ndim != 2:
        raise UserError(f"{path}: damaged checkpoint (its per-step loss tracker is malformed); re-export it or use "
                        "another --model")
    if "weights_sha256" in ckpt and ckpt["weights_sha256"] != weights_digest(ckpt["model"]):
        raise UserError(f"{path}: the weights do not match their checksum (the file is damaged); re-download or "
                        "re-export it")
    return ckpt


def load(path: str | Path | None = None, engine: str = "torch") -> LoadedModel:
    """A checkpoint's model (the bundled default when ``path`` is None).

    ``engine``: "torch" reads the checkpoint with torch and builds the model; "auto" loads the model
    from the card of its ONNX network when a usable one lies beside it (no torch), else as "torch";
    "onnx" requires one (UserError saying why there is none)."""
    check_engine(engine)
    p = Path(path) if path is not None else BUNDLED
    if path is None and not p.is_file():
        raise UserError("no bundled model in this installation; pass --model PATH (a checkpoint from 'train')")
    if engine != "torch" and p.is_file():
        sha = hashlib.sha256(p.read_bytes()).hexdigest()
        lanes, threads = restore_lanes()
        net, card, why = open_onnx(p, sha, threads, lanes)
        if net is not None:
            return LoadedModel(RunConfig.from_dict(card["config"]), dict(card.get("meta", {})), p, sha,
                               dict(card.get("policies", {})), int(card.get("parameters", 0)), onnx=net)
        if engine == "onnx":
            read_raw(p)  # a file that is not a checkpoint says so first
            raise UserError(f"{p}: cannot run under ONNX Runtime: {why}; write its network with "
                            f"'upscale-audio export --onnx {p}', or use --engine torch")
    return _load_torch(p)


def _load_torch(p: Path) -> LoadedModel:
    """Read a checkpoint with torch and build its model."""
    from .model import build_model
    from .policy import StepLossTracker

    ckpt = read_raw(p)
    cfg = RunConfig.from_dict(ckpt["config"])
    model = build_model(cfg)
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as e:
        raise UserError(f"{p}: weights do not match the embedded config ({str(e).splitlines()[0]})") from None
    model.eval()
    tracker = StepLossTracker(cfg.ardm.schedule, cfg.ardm.tracker_bins, cfg.ardm.tracker_momentum)
    if tuple(ckpt["tracker"]["values"].shape) != tuple(tracker.values.shape):
        raise UserError(f"{p}: damaged checkpoint (tracker shape does not match its config); use another --model")
    tracker.load_state_dict(ckpt["tracker"])
    sha = hashlib.sha256(p.read_bytes()).hexdigest()
    return LoadedModel(cfg, dict(ckpt.get("meta", {})), p, sha, dict(ckpt.get("policies", {})),
                       model.num_parameters(), _model=model, _tracker=tracker)


@lru_cache(maxsize=4)
def load_cached(path: str | None = None, engine: str = "torch") -> LoadedModel:
    """``load``, once per path and engine in a process (a batch of files, the Python API)."""
    return load(path, engine)


def within_one_high_byte(lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether every interval [lo, hi) lies inside one high-byte bin: the high byte is known, so a
    low-byte specialist can restore the input (linear depths 8..15; G.711 only when quiet)."""
    return bool(np.all((np.asarray(lo) >> 8) == ((np.asarray(hi) - 1) >> 8)))


def scoring_model(path: str | Path | None, law: str | None) -> str | None:
    """The checkpoint ``bpd`` scores with: ``path`` when the user named one, the bundled interval
    model for what G.711 coding leaves open (``--given ulaw|alaw``) when it is installed, else the
    bundled all-16-bit model (None)."""
    if path is not None:
        return str(path)
    return str(BUNDLED_INTERVALS) if law is not None and BUNDLED_INTERVALS.is_file() else None


def model_for(path: str | Path | None, lo: np.ndarray, hi: np.ndarray, law: str | None = None,
              mode: str = "sample") -> str | None:
    """The checkpoint that restores intervals [lo, hi) in ``mode``: ``path`` when the user named
    one. Otherwise a bundled model: the low-byte specialist for linear PCM whose high byte is known
    everywhere (8..15 bits; its fast sibling for ``mode`` "mean"), the interval model for the rest
    (G.711 bins, ``law`` "ulaw" or "alaw", and linear depths under 8). Without one of them an
    installation falls back to the other where it fits, then to the all-16-bit model (None)."""
    if path is not None:
        return str(path)
    high_byte_known = within_one_high_byte(lo, hi)
    if law is None and high_byte_known:
        if mode == "mean" and BUNDLED_LOW_BYTE_MEAN.is_file():
            return str(BUNDLED_LOW_BYTE_MEAN)
        if BUNDLED_LOW_BYTE.is_file():
            return str(BUNDLED_LOW_BYTE)
    if BUNDLED_INTERVALS.is_file():
        return str(BUNDLED_INTERVALS)
    return str(BUNDLED_LOW_BYTE) if high_byte_known and BUNDLED_LOW_BYTE.is_file() else None
