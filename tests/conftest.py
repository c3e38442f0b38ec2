"""Shared fixtures: tiny models saved as real checkpoints, short synthetic and real-looking audio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from upscale_audio.checkpoint import atomic_save, make_checkpoint
from upscale_audio.config import load_config
from upscale_audio.model import build_model
from upscale_audio.policy import StepLossTracker

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.toml"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    # TEST_THREADS=1 keeps the tests usable while a training run holds the cores (oversubscribed
    # OpenMP threads spin and slow small convs down a hundredfold)
    torch.set_num_threads(int(os.environ.get("TEST_THREADS", "2")))


def tiny_config(schedule=(8, 8), known_bits=8, **model):  # type: ignore[no-untyped-def]
    sets = [f"ardm.schedule={list(schedule)}", f"ardm.known_bits={known_bits}"]
    sets += [f"model.{k}={str(v).lower() if isinstance(v, bool) else repr(v)}".replace("'", '"')
             for k, v in model.items()]
    return load_config(TINY, sets)


def save_tiny_model(path: Path, schedule=(8, 8), known_bits=8, perturb: bool = True, **model) -> Path:  # type: ignore[no-untyped-def]
    """A tiny untrained model as a checkpoint; ``perturb`` gives its zero head random weights so
    that its distributions are not uniform."""
    cfg = tiny_config(schedule, known_bits, **model)
    m = build_model(cfg)
    if perturb:
        with torch.no_grad():
            m.out.weight.normal_(0, 0.5)
            m.out.bias.normal_(0, 0.5)
    tracker = StepLossTracker(cfg.ardm.schedule, cfg.ardm.tracker_bins, cfg.ardm.tracker_momentum)
    for s in range(len(cfg.ardm.schedule)):
        n = cfg.ardm.tracker_bins
        tracker.values[s] = torch.linspace(cfg.ardm.schedule[s], cfg.ardm.schedule[s] * 0.5, n).double()
        tracker.counts[s] = 1
    atomic_save(make_checkpoint(cfg, m.state_dict(), tracker, {"steps": 0}), path)
    return path


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    return save_tiny_model(tmp_path / "tiny.pt")


def speechlike(T: int, rate: int = 16000, seed: int = 0, channels: int = 1, noise: float = 200.0) -> np.ndarray:
    """Int16 [C, T]: a few harmonics with vibrato plus noise (every low bit in use)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / rate
    out = []
    for c in range(channels):
        f0 = 120 + 30 * np.sin(2 * np.pi * 3 * t + c)
        ph = 2 * np.pi * np.cumsum(f0) / rate
        x = sum(np.sin(k * ph) / k for k in range(1, 8)) * 6000 + rng.normal(0, noise, T)
        out.append(np.clip(np.round(x), -32768, 32767))
    return np.array(out, dtype=np.int16)
