"""Non-causal WaveNet-style backbone of the Upscale ARDM (docs/DESIGN.md §3).

Per position the network sees the current value (known digits filled in, unknown digits zero), the
revealed-mask of the current stage, a one-hot of the stage and, through an embedding added in every
block, the global step. It returns logits for the digit of the current stage.

How the value is presented (``ModelConfig.features``):

* ``plain``  - the paper's input: x / 32768 - 1 only. One unit of the low byte is 3e-5 there, which
  the network barely resolves.
* ``embed``  - plain, plus an embedding of the top 8 bits of the value.
* ``scaled`` - embed, plus the value at the scale of the stage being predicted: with unknown bits set
  to their bin centre (x_hat) and ``range = 2**(bits below the stage's top)``, the detail
  (x_hat - moving average) / range and the neighbour differences / range, clipped to +-8, and the
  within-range position of revealed digits.
* ``predict`` - scaled, plus local predictions of each sample from its neighbours (interpolators,
  extrapolators, a moving average) as offsets from x_hat in bins of the stage (``features.py``).
  The default.

Shapes: B batch, T time, C channels, W = 2**(widest modelled stage).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .bits import check_schedule, stage_lows
from .config import ModelConfig, RunConfig
from .features import CLIP, predictor_features

OUTPUT_SCALE = 0.1  # the prior model's output layer acts at a tenth of the backbone's step size
CORRECTION = 4.0  # the network moves the prior by at most this many scales, and its log-scale by this much


def _n_features(cfg: ModelConfig, n_stages: int) -> int:
    base = {"plain": 1, "embed": 1, "scaled": 5, "predict": 8}[cfg.features]
    extra = 4 if cfg.prior != "none" else 0  # interval centre and width, prior location and scale
    width = 1 if cfg.interval_features else 0  # the known interval's log-width, last
    return base + extra + 1 + n_stages + width  # + revealed mask + one-hot stage


def output_offsets(schedule: tuple[int, ...], stages: tuple[int, ...]) -> list[int]:
    """Where each modelled stage's 2**w digit logits start in the output layer (stages in order)."""
    sizes = [2 ** schedule[s] for s in stages]
    return [sum(sizes[:i]) for i in range(len(sizes))]


class ResidualBlock(nn.Module):
    """Gated dilated conv: y = tanh(a) * sigmoid(b); residual (x + 1x1 y) / sqrt 2; skip 1x1 y."""

    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.step_proj = nn.Linear(channels * 4, channels)
        self.dilated = nn.Conv1d(
            channels, 2 * channels, kernel_size, dilation=dilation, padding=dilation * (kernel_size // 2)
        )
        self.res = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, channels, 1)
        for conv in (self.dilated, self.res, self.skip):
            nn.init.kaiming_normal_(conv.weight)
            assert conv.bias is not None
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [B, C, T], temb: [B, 4C] -> (residual [B, C, T], skip [B, C, T]).

        ``last``: the residual output is not needed (the last block): it is returned as x unchanged."""
        h = x + self.step_proj(temb)[:, :, None]  # not in place: x is needed for the residual
        a, b = self.dilated(h).chunk(2, dim=1)
        y = torch.tanh(a) * torch.sigmoid(b)
        if last:
            return x, self.skip(y)
        return (x + self.res(y)) / math.sqrt(2.0), self.skip(y)


class UpscaleWaveNet(nn.Module):
    """The backbone. Built from a :class:`ModelConfig`, the schedule and the stages it models."""

    lows: torch.Tensor  # [S] bits below each stage (buffer)
    widths: torch.Tensor  # [S] stage widths in bits (buffer)
    stage_rows: torch.Tensor  # [S, W] the output rows of each stage's digits (buffer)
    stage_pad: torch.Tensor  # [S, W] True for a narrower stage's padding (buffer)

    def __init__(self, cfg: ModelConfig, schedule: tuple[int, ...], stages: tuple[int, ...]):
        super().__init__()
        widths = check_schedule(schedule)
        self.cfg = cfg
        self.schedule = tuple(int(w) for w in widths)
        self.stages = tuple(int(s) for s in stages)
        self.n_stages = len(self.schedule)
        lows = torch.from_numpy(stage_lows(self.schedule))
        self.register_buffer("lows", lows.long(), persistent=False)
        self.register_buffer("widths", torch.tensor(self.schedule, dtype=torch.long), persistent=False)
        C = cfg.channels
        self.input_conv = nn.Conv1d(_n_features(cfg, self.n_stages), C, 3, padding=1)
        self.top_embed = nn.Embedding(256, cfg.embed_dim) if cfg.features != "plain" else None
        self.embed_proj = nn.Conv1d(cfg.embed_dim, C, 1) if self.top_embed is not None else None
        self.step_mlp = nn.Sequential(nn.Linear(C, 4 * C), nn.SiLU(), nn.Linear(4 * C, 4 * C), nn.SiLU())
        self.dilations = cfg.dilations()
        self.blocks = nn.ModuleList(ResidualBlock(C, cfg.kernel_size, d) for d in self.dilations)
        self.head = nn.Conv1d(C, C, 1)
        # one block of logits per modelled stage; offsets into the output channels
        sizes = [2 ** self.schedule[s] for s in self.stages]
        self.out_offsets = output_offsets(self.schedule, self.stages)
        self.max_classes = max(sizes)
        # the output rows of each stage (by its index in the schedule), padded to max_classes with
        # its last row; stage_pad marks the padding (-inf logits) when the stages' widths differ
        rows = torch.zeros(self.n_stages, self.max_classes, dtype=torch.long)
        pad = torch.zeros(self.n_stages, self.max_classes, dtype=torch.bool)
        for i, st in enumerate(self.stages):
            n = sizes[i]
            rows[st] = self.out_offsets[i] + torch.arange(self.max_classes).clamp(max=n - 1)
            pad[st, n:] = True
        self.register_buffer("stage_rows", rows, persistent=False)
        self.register_buffer("stage_pad", pad, persistent=False)
        self.padded = bool(pad.any())
        # with a prior, two more outputs: its location shift (in prior scales) and log-scale change
        self.n_prior_out = 2 if cfg.prior != "none" else 0
        self.out = nn.Conv1d(C, sum(sizes) + self.n_prior_out, 1)
        nn.init.zeros_(self.out.weight)  # zero at init: the model scores what the prior (or uniform) does
        assert self.out.bias is not None
        nn.init.zeros_(self.out.bias)

    # ------------------------------------------------------------------ geometry
    def receptive_field(self) -> int:
        """Input samples that can influence one output sample (two-sided): ``ModelConfig.receptive_field``."""
        return self.cfg.receptive_field()

    # ------------------------------------------------------------------ inputs
    def current_interval(
        self, value: torch.Tensor, revealed: torch.Tensor, stage: torch.Tensor,
        iv_lo: torch.Tensor | None, iv_hi: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What is known of each sample at this step: [lo, hi) long [B, T] each.

        The stage's digit and everything below it are unknown where not revealed (below it where
        revealed), intersected with the input's known interval [iv_lo, iv_hi) when there is one."""
        low = self.lows[stage][:, None]  # [B, 1]
        width = self.widths[stage][:, None]
        unknown = torch.where(revealed > 0.5, low, low + width)  # unknown low bits per position
        lo, hi = value, value + (1 << unknown)
        if iv_lo is not None and iv_hi is not None:
            lo, hi = torch.maximum(lo, iv_lo), torch.minimum(hi, iv_hi)
        return lo, hi

    def features(
        self, value: torch.Tensor, revealed: torch.Tensor, stage: torch.Tensor,
        iv_lo: torch.Tensor | None = None, iv_hi: torch.Tensor | None = None,
        prior: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Float features [B, F, T] and x_hat [B, T] (lo + (hi - lo) // 2: the bin centre of what is
        known, the exact value once known)."""
        lo, hi = self.current_interval(value, revealed, stage, iv_lo, iv_hi)
        x_hat = (lo + (hi - lo) // 2).float()
        centre = (lo + hi).float() / 2 if self.cfg.interval_features else None
        feats = self.features_from_xhat(x_hat, value, revealed, stage, centre)
        if prior is not None:
            low = self.lows[stage][:, None]
            scale = torch.pow(2.0, (low + self.widths[stage][:, None]).float())
            mu, sigma = prior
            extra = torch.stack([
                ((lo + hi - 1).float() / 2 - x_hat) / scale,  # exact centre vs x_hat (sub-unit)
                torch.log2((hi - lo).clamp(min=1).float()) / 16,
                ((mu - x_hat) / scale).clamp(-CLIP, CLIP),
                torch.log2(sigma.clamp(min=0.25)) / 16,
            ], 1)
            feats = torch.cat([feats[:, :-1 - self.n_stages], extra, feats[:, -1 - self.n_stages:]], 1)
        if self.cfg.interval_features:
            feats = torch.cat([feats, torch.log2((hi - lo).clamp(min=1).float())[:, None] / 16], 1)
        return feats, x_hat

    def prior_of(
        self, value: torch.Tensor, revealed: torch.Tensor, stage: torch.Tensor,
        iv_lo: torch.Tensor | None, iv_hi: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The classical prior's location and scale of every sample (16-bit units): float [B, T] x 2."""
        lo, hi = self.current_interval(value, revealed, stage, iv_lo, iv_hi)
        from .prior import lmmse  # numba: imported only by models with a prior

        mu, sigma = lmmse(lo.cpu().numpy(), hi.cpu().numpy(), self.cfg.prior_half, self.cfg.prior_taps)
        return torch.from_numpy(mu).float().to(value.device), torch.from_numpy(sigma).float().to(value.device)

    def features_from_xhat(
        self, x_hat: torch.Tensor, value: torch.Tensor, revealed: torch.Tensor, stage: torch.Tensor,
        centre: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Features from a float x_hat [B, T] (differentiable in x_hat, for the receptive-field probe);
        ``centre`` [B, T]: (lo + hi) / 2 of what is known, for ``model.interval_features``."""
        onehot = F.one_hot(stage, self.n_stages).float()[:, :, None].expand(-1, -1, x_hat.shape[1])
        feats = [x_hat / 32768.0 - 1.0]
        if self.cfg.features == "predict":
            feats += predictor_features(x_hat, value, revealed, self.lows[stage][:, None], self.widths[stage][:, None],
                                        self.cfg.smooth_width, centre)
        if self.cfg.features == "scaled":
            low = self.lows[stage][:, None]
            width = self.widths[stage][:, None]
            scale = torch.pow(2.0, (low + width).float())  # range of the bits at and below the stage
            k = self.cfg.smooth_width
            padded = F.pad(x_hat[:, None], (k // 2, k // 2), mode="replicate")
            smooth = F.avg_pool1d(padded, k, stride=1)[:, 0]
            edge = F.pad(x_hat[:, None], (1, 1), mode="replicate")[:, 0]
            left = x_hat - edge[:, :-2]
            right = edge[:, 2:] - x_hat
            within = torch.remainder(value.float(), scale) + torch.pow(2.0, low.float()) / 2
            feats += [
                ((x_hat - smooth) / scale).clamp(-CLIP, CLIP),
                (left / scale).clamp(-CLIP, CLIP),
                (right / scale).clamp(-CLIP, CLIP),
                revealed * (2.0 * within / scale - 1.0),
            ]
        return torch.cat([torch.stack(feats, 1), revealed[:, None], onehot], 1)

    def step_embedding(self, t_frac: torch.Tensor) -> torch.Tensor:
        """Sinusoidal embedding of the global step fraction t_frac [B] in [0, 1) -> [B, 4C]."""
        half = self.cfg.channels // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t_frac.device) / max(half - 1, 1))
        arg = (t_frac.float() * 1000.0)[:, None] * freqs[None]
        return self.step_mlp(torch.cat([arg.sin(), arg.cos()], 1))

    # ------------------------------------------------------------------ forward
    def forward(
        self, value: torch.Tensor, revealed: torch.Tensor, stage: torch.Tensor, t_frac: torch.Tensor,
        iv_lo: torch.Tensor | None = None, iv_hi: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Digit logits of each example's stage.

        Args:
            value: long [B, T], current value u (known digits filled in, unknown digits zero).
            revealed: float [B, T], 1 where the current stage's digit is already known.
            stage: long [B], stage index (into the full schedule) of each example.
            t_frac: float [B], global step as a fraction: (stage + t / D) / n_stages.
            iv_lo, iv_hi: long [B, T], the input's known interval [lo, hi) per sample (None: nothing).
        Returns:
            float [B, T, W]; classes beyond 2**width of an example's stage are -inf. With a prior,
            its digit log-probabilities plus the network's logits (-inf where the interval excludes).
        """
        if self.cfg.prior == "none":
            feats, _ = self.features(value, revealed, stage, iv_lo, iv_hi)
            return self.forward_features(feats, value, stage, t_frac)
        mu, sigma = self.prior_of(value, revealed, stage, iv_lo, iv_hi)
        feats, _ = self.features(value, revealed, stage, iv_lo, iv_hi, (mu, sigma))
        # the output enters scaled down: with Adam the step size of the output layer is what moves a
        # sharp prior, and at the backbone's learning rate early noisy steps undo it (measured: the
        # training bpd rose from 9.0 to 11.8 in the first 100 steps at full scale)
        out = OUTPUT_SCALE * self.forward_features(feats, value, stage, t_frac)  # [B, T, W + 2]
        logits, shift, log_scale = out[..., :-2], out[..., -2], out[..., -1]
        low = self.lows[stage][:, None]
        past = (value >> (low + self.widths[stage][:, None])) << (low + self.widths[stage][:, None])
        lo = iv_lo if iv_lo is not None else torch.zeros_like(value)
        hi = iv_hi if iv_hi is not None else torch.full_like(value, 1 << 16)
        # bounded corrections with a gradient everywhere (a hard clamp would leave them stuck at a bound)
        sigma2 = sigma * torch.exp(CORRECTION * torch.tanh(log_scale.float() / CORRECTION))
        shift = CORRECTION * torch.tanh(shift.float() / CORRECTION)
        from .prior import digit_log_probs

        prior_lp = digit_log_probs(mu + shift * sigma, sigma2, past, lo, hi, low, logits.shape[-1])
        return logits.float() + prior_lp

    def forward_features(
        self, feats: torch.Tensor, value: torch.Tensor, stage: torch.Tensor, t_frac: torch.Tensor,
    ) -> torch.Tensor:
        """Logits of each example's stage from its features: the trunk, then the stage's output rows."""
        z = self.trunk(feats, value, self.step_embedding(t_frac))
        return self._stage_logits(z, stage)

    def trunk(self, feats: torch.Tensor, value: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """Everything between the features and the output layer: the input conv, the top-byte
        embedding, the residual blocks and the head. feats [B, F, T], value long [B, T], temb
        [B, 4C] (``step_embedding``) -> z [B, C, T]."""
        # the input layer runs in float32 even under autocast: bf16 would round away the low bits
        with torch.autocast(feats.device.type, enabled=False):
            h = self.input_conv(feats.float())
        if self.top_embed is not None and self.embed_proj is not None:
            top = (value >> 8).clamp(0, 255)
            h = h + self.embed_proj(self.top_embed(top).transpose(1, 2)).float()
        h = F.relu(h)
        skip = torch.zeros_like(h)
        for i, block in enumerate(self.blocks):
            h, s = block(h, temb, last=i == len(self.blocks) - 1)
            skip = skip + s
        return F.relu(self.head(F.relu(skip / math.sqrt(len(self.blocks)))))  # [B, C, T]

    def _stage_logits(self, z: torch.Tensor, stage: torch.Tensor) -> torch.Tensor:
        """The output layer for each example's stage -> [B, T, W] (-inf padded), then the prior's
        two correction channels when there is a prior ([B, T, W + 2])."""
        zt = z.transpose(1, 2)  # [B, T, C]: the 1x1 output layer as a matmul gives [B, T, W] contiguous
        if self.n_prior_out:
            assert self.out.bias is not None
            n = self.out.out_channels - 2
            corr = F.linear(zt, self.out.weight[n:, :, 0], self.out.bias[n:])
            return torch.cat([self._digit_logits(zt, stage, n), corr], -1)
        return self._digit_logits(zt, stage, self.out.out_channels)

    def _digit_logits(self, zt: torch.Tensor, stage: torch.Tensor, n_out: int) -> torch.Tensor:
        """zt [B, T, C] -> the stage's digit logits [B, T, W] (the output layer's rows of that stage).

        Inference calls one stage per batch (and an ONNX export must assume it: a traced branch on
        the values of ``stage`` would be frozen into the graph), so then only that stage's rows are
        computed, picked by indexing with the stage (``stage_rows``), not by Python slicing."""
        B, T, _ = zt.shape
        w, b = self.out.weight[:, :, 0], self.out.bias
        assert b is not None
        if len(self.stages) == 1:
            return F.linear(zt, w[:n_out], b[:n_out])
        if torch.onnx.is_in_onnx_export() or bool((stage == stage[0]).all()):
            rows = self.stage_rows[stage[0]]  # [W]
            out = F.linear(zt, w[rows], b[rows])
            return out.masked_fill(self.stage_pad[stage[0]], float("-inf")) if self.padded else out
        out = F.linear(zt, w[:n_out], b[:n_out])  # [B, T, n_out]
        res = out.new_full((B, T, self.max_classes), float("-inf"))
        for i, s in enumerate(self.stages):
            sel = stage == s
            if sel.any():
                n = 2 ** self.schedule[s]
                res[sel, :, :n] = out[sel, :, self.out_offsets[i] : self.out_offsets[i] + n]
        return res

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def widen_inputs(state: dict[str, torch.Tensor], model: UpscaleWaveNet) -> dict:
    """A state dict of a model without the interval features (``model.interval_features``) for
    ``model``, which has them: the input conv gets a zero column for the width input. For linear PCM
    of whole stages (and no interval) the widened model computes exactly what the original did
    until training moves that column; elsewhere the position input now shows where the interval's
    centre lies, which the original model never saw."""
    w = state["input_conv.weight"]  # [C, F, k]
    n_in = model.input_conv.in_channels
    if w.shape[1] == n_in:
        return state
    if w.shape[1] != n_in - 1 or not model.cfg.interval_features:
        raise ValueError(f"cannot widen {w.shape[1]} input features to {n_in}")
    out = dict(state)
    out["input_conv.weight"] = torch.cat([w, w.new_zeros(w.shape[0], 1, w.shape[2])], 1)
    return out


def narrow_to_stages(state: dict[str, torch.Tensor], model: UpscaleWaveNet, from_stages: tuple[int, ...]) -> dict:
    """A state dict of a model over ``from_stages`` cut down to ``model``'s stages (a subset): the
    rows of the output layer of the stages it keeps; everything else is shared as is. This starts a
    low-byte specialist from an all-16-bit model at exactly that model's low-byte scores."""
    if tuple(from_stages) == model.stages:
        return state
    if not set(model.stages) <= set(from_stages):
        raise ValueError(f"cannot narrow stages {tuple(from_stages)} to {model.stages}")
    offsets = output_offsets(model.schedule, from_stages)
    rows = [torch.arange(offsets[from_stages.index(s)], offsets[from_stages.index(s)] + 2 ** model.schedule[s])
            for s in model.stages]
    n_digit = sum(2 ** model.schedule[s] for s in from_stages)
    idx = torch.cat(rows + [torch.arange(n_digit, n_digit + model.n_prior_out)])
    out = dict(state)
    out["out.weight"], out["out.bias"] = state["out.weight"][idx], state["out.bias"][idx]
    return out


def build_model(cfg: RunConfig) -> UpscaleWaveNet:
    """The backbone a run config describes (the stages its known bits leave open)."""
    from .stages import StageMaps

    maps = StageMaps(cfg.ardm.schedule)
    return UpscaleWaveNet(cfg.model, maps.schedule, tuple(maps.modelled_stages(cfg.ardm.known_bits)))
