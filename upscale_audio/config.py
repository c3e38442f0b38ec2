"""Run configuration: frozen dataclasses, TOML files and ``--set section.key=value`` overrides.

A :class:`RunConfig` has four sections (``model``, ``ardm``, ``data``, ``train``). It is saved inside
every checkpoint as a plain dict, so a checkpoint always rebuilds exactly the network it was
trained with.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from . import bits
from .errors import UserError


@dataclass(frozen=True)
class ModelConfig:
    """Non-causal WaveNet backbone (see ``model.py``)."""

    channels: int = 64  # residual channels
    blocks: int = 12  # gated residual blocks
    dilation_cycle: int = 12  # dilations 1, 2, ..., 2**(cycle-1), repeated
    kernel_size: int = 3
    embed_dim: int = 32  # embedding of the top 8 bits of the current value
    # "predict" (default): scaled plus local predictions (interpolators, extrapolators, moving average)
    # as offsets from the bin centre (features.py); "scaled": value also shown at the scale of the
    # stage being predicted (detail features);
    # "embed": x / 32768 plus an embedding of the top 8 bits; "plain": only x / 32768 (the
    # paper's input). The last two are kept to measure the difference (benchmarks/).
    features: str = "predict"
    smooth_width: int = 9  # moving-average width for the detail feature
    # The network sees each sample's known interval at the scale of the stage (issue 13): where the
    # centre of what is known lies in the stage's digit range, for every position (without it, only
    # for revealed ones: an unrevealed sample was assumed to sit at the middle, true only for linear
    # PCM of whole stages), and one more input, log2 of the interval's width / 16 (without it a
    # G.711 bin 2 units wide looks like one 1024 wide).
    interval_features: bool = False
    # The classical prior each stage starts from (prior.py): "none" (digit softmax only) or "lmmse"
    # (locally fitted two-sided interpolator; the network adds logits and corrects its location and
    # scale, all from a zero-initialised output layer).
    prior: str = "none"
    prior_half: int = 256  # half-width of the prior's covariance window (samples)
    prior_taps: int = 8  # neighbours per side of the prior's interpolator

    def dilations(self) -> list[int]:
        """Dilation of each residual block: 1, 2, ..., 2**(cycle - 1), repeated."""
        return [2 ** (i % self.dilation_cycle) for i in range(self.blocks)]

    def receptive_field(self) -> int:
        """Input samples that can influence one output sample (two-sided): the input conv, the
        blocks, the features' reach and the prior's window."""
        half = 1 + sum(d * (self.kernel_size // 2) for d in self.dilations())
        if self.features in ("scaled", "predict"):
            half += max(self.smooth_width // 2, 1 if self.features == "scaled" else 2)
        if self.prior != "none":
            half += self.prior_half  # the prior at the edge of the conv's reach sees this far
        return 2 * half + 1


@dataclass(frozen=True)
class ARDMConfig:
    """The Upscale ARDM: which bits are modelled and how."""

    schedule: tuple[int, ...] = (8, 8)  # stage widths in bits, most significant first, sum 16
    known_bits: int = 8  # the model covers only stages below this many known bits (0: all 16 bits)
    ce_weight: float = 1e-4  # weight of the un-reweighted CE term in the training loss
    # Relative probabilities of drawing each modelled stage in training (empty: proportional to its
    # unknown bits). Draws are weighted by 1 / p, so the ELBO stays unbiased whatever is chosen.
    stage_draw: tuple[int, ...] = ()
    # Share of training rows drawn at t = 0 (none of the stage's digits revealed) instead of a
    # uniform t. Above 0 it weights the first call of each stage, the one `enhance --mode mean`
    # reads, more than the ELBO does: the logged training bpd is then no longer an ELBO (the
    # validation bpd still is).
    t_zero_share: float = 0.0
    # Share of training rows conditioned on a random known interval per sample (a linear depth of
    # 4..12 bits, G.711 mu-law or A-law) instead of nothing: one model restores all of them.
    interval_share: float = 0.0
    tracker_bins: int = 128  # per-step loss tracking resolution over t / D
    tracker_momentum: float = 0.98


@dataclass(frozen=True)
class DataConfig:
    crop: int = 8000  # samples per training example (D during training)
    sample_rates: tuple[int, ...] = ()  # filled in by training: rates seen in the data


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 8
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decay to lr * this over max_steps
    warmup_steps: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema: float = 0.999
    max_steps: int = 10_000
    log_every: int = 50
    val_every: int = 1000
    val_crops: int = 16
    val_passes: int = 4
    ckpt_every: int = 1000
    seed: int = 0
    num_threads: int = 0  # torch CPU threads (0: torch default)


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    ardm: ARDMConfig = field(default_factory=ARDMConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {f.name: _section_to_dict(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise UserError(f"unknown config section(s) {sorted(unknown)}; expected model, ardm, data, train")
        sections = {}
        for f in dataclasses.fields(cls):
            sec_cls = type(getattr(cls(), f.name))
            sections[f.name] = _section_from_dict(sec_cls, d.get(f.name, {}), f.name)
        cfg = cls(**sections)
        validate(cfg)
        return cfg

    def replace(self, section: str, **kw: Any) -> RunConfig:
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **kw)})


def _section_to_dict(sec: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(sec).items()}


def _coerce(value: Any, default: Any, where: str) -> Any:
    """Check ``value`` against the type of the field's default and convert lists to tuples."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value)
        value = tuple(value) if ok else value
    else:  # pragma: no cover
        ok = True
    if not ok:
        raise UserError(f"config {where}: expected {type(default).__name__}, got {value!r}")
    return value


def _section_from_dict(sec_cls: type, d: dict[str, Any], name: str) -> Any:
    defaults = sec_cls()
    names = {f.name for f in dataclasses.fields(sec_cls)}
    unknown = set(d) - names
    if unknown:
        raise UserError(f"unknown key(s) {sorted(unknown)} in config section [{name}]; known: {sorted(names)}")
    kw = {k: _coerce(v, getattr(defaults, k), f"{name}.{k}") for k, v in d.items()}
    return sec_cls(**kw)


def validate(cfg: RunConfig) -> None:
    """Raise :class:`UserError` for configs that cannot work."""
    sched = cfg.ardm.schedule
    try:
        bits.check_schedule(sched)
    except ValueError:
        raise UserError(f"ardm.schedule {list(sched)} must be widths of 1..16 bits summing to 16") from None
    if not 0 <= cfg.ardm.known_bits < 16:
        raise UserError(f"ardm.known_bits must be in 0..15, got {cfg.ardm.known_bits}")
    n_modelled = len(sched) - bits.stage_of_bit(sched, cfg.ardm.known_bits)
    if cfg.ardm.stage_draw and (len(cfg.ardm.stage_draw) != n_modelled or min(cfg.ardm.stage_draw) < 1):
        raise UserError(f"ardm.stage_draw needs one positive weight per modelled stage ({n_modelled}), "
                        f"got {list(cfg.ardm.stage_draw)}")
    if not 0.0 <= cfg.ardm.t_zero_share < 1.0:
        raise UserError(f"ardm.t_zero_share must be in [0, 1), got {cfg.ardm.t_zero_share}")
    if not 0.0 <= cfg.ardm.interval_share <= 1.0:
        raise UserError(f"ardm.interval_share must be in [0, 1], got {cfg.ardm.interval_share}")
    if cfg.model.prior not in ("none", "lmmse"):
        raise UserError(f"model.prior must be none or lmmse; got {cfg.model.prior!r}")
    if cfg.model.prior_half < 4 * cfg.model.prior_taps or cfg.model.prior_taps < 1:
        raise UserError("model.prior_taps must be >= 1 and model.prior_half >= 4 * prior_taps")
    if cfg.model.channels < 2 or cfg.model.blocks < 1 or cfg.model.embed_dim < 1:
        raise UserError("model.channels must be >= 2, model.blocks and model.embed_dim >= 1")
    if cfg.model.features not in ("predict", "scaled", "embed", "plain"):
        raise UserError(f"model.features must be predict, scaled, embed or plain; got {cfg.model.features!r}")
    if cfg.model.interval_features and cfg.model.features != "predict":
        raise UserError("model.interval_features needs model.features = \"predict\"")
    if cfg.model.kernel_size % 2 != 1 or cfg.model.smooth_width % 2 != 1:
        raise UserError("model.kernel_size and model.smooth_width must be odd")
    if cfg.data.crop < 2 or cfg.train.batch_size < 1:
        raise UserError("data.crop must be >= 2 and train.batch_size >= 1")
    t = cfg.train
    checks = [
        (t.lr > 0, f"train.lr must be > 0, got {t.lr}"),
        (0 <= t.min_lr_ratio <= 1, f"train.min_lr_ratio must be in [0, 1], got {t.min_lr_ratio}"),
        (t.warmup_steps >= 0 and t.max_steps >= 0, "train.warmup_steps and train.max_steps must be >= 0"),
        (t.weight_decay >= 0 and t.grad_clip > 0, "train.weight_decay must be >= 0 and train.grad_clip > 0"),
        (0 <= t.ema < 1, f"train.ema must be in [0, 1), got {t.ema}"),
        (min(t.log_every, t.val_every, t.ckpt_every, t.val_crops, t.val_passes) >= 1,
         "train.log_every, val_every, ckpt_every, val_crops and val_passes must be >= 1"),
        (t.num_threads >= 0, "train.num_threads must be >= 0 (0: torch's default)"),
        (cfg.ardm.ce_weight >= 0 and cfg.ardm.tracker_bins >= 1 and 0 <= cfg.ardm.tracker_momentum < 1,
         "ardm.ce_weight must be >= 0, ardm.tracker_bins >= 1 and ardm.tracker_momentum in [0, 1)"),
        (cfg.model.dilation_cycle >= 1 and cfg.model.kernel_size >= 1,
         "model.dilation_cycle and kernel_size must be >= 1"),
    ]
    for ok, msg in checks:
        if not ok:
            raise UserError(msg)


def parse_value(text: str) -> Any:
    """Parse the right-hand side of ``--set key=value`` as a TOML value (bare words become strings)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides to a nested config dict (a new dict is returned)."""
    out = {k: dict(v) for k, v in d.items()}
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise UserError(f"--set {item!r}: expected section.key=value, e.g. --set train.lr=3e-4")
        key, text = item.split("=", 1)
        section, name = key.strip().split(".", 1)
        out.setdefault(section, {})[name] = parse_value(text.strip())
    return out


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a TOML config file (or the defaults when ``path`` is None) and apply overrides."""
    d: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"config file {p} not found; see configs/ for examples")
        try:
            d = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as e:
            raise UserError(f"config file {p} is not valid TOML: {e}") from None
    return RunConfig.from_dict(apply_overrides(d, overrides or []))


def to_toml(cfg: RunConfig) -> str:
    """Write a config as TOML (only the value types configs use: int, float, str, bool, int lists)."""
    lines = []
    for section, values in cfg.to_dict().items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            if isinstance(v, bool):
                s = "true" if v else "false"
            elif isinstance(v, str):
                s = '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                s = repr(v)
            lines.append(f"{k} = {s}")
        lines.append("")
    return "\n".join(lines)
