from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from tests.conftest import TINY, speechlike
from upscale_audio import checkpoint
from upscale_audio.config import load_config
from upscale_audio.errors import UserError
from upscale_audio.train import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    for i in range(3):
        x = speechlike(6000, seed=i, channels=1 + i % 2, noise=4.0)  # smooth: low byte predictable
        sf.write(d / f"{i}.wav", x.T, 16000, subtype="PCM_16")
    sf.write(d / "eight.wav", ((speechlike(3000) >> 8) << 8).T, 16000, subtype="PCM_16")  # skipped: 8 bits
    return d


def test_train_learns_writes_checkpoints_and_resumes(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = load_config(TINY, ["train.max_steps=80", "train.lr=1e-2", "train.val_every=40"])
    rec = train(cfg, [data], run, [data], quiet=True)
    assert rec["step"] == 80 and rec["val_bpd"] < 7.9  # learnt something below uniform (8 bits)
    ckpt = checkpoint.load(run / "latest.pt")
    assert ckpt.meta["steps"] == 80 and ckpt.meta["files"] == 3 and ckpt.config.data.sample_rates == (16000,)
    assert ckpt.tracker.counts.sum() == 80 * 4
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["final"] and log[0]["step"] == 5
    with pytest.raises(UserError, match="already finished"):
        train(cfg, [data], run, quiet=True)
    rec = train(load_config(TINY, ["train.max_steps=90", "train.lr=1e-2", "train.val_every=40"]), [data], run,
                quiet=True)
    assert rec["step"] == 90 and checkpoint.load(run / "latest.pt").meta["steps"] == 90
    with pytest.raises(UserError, match="another model"):
        train(load_config(TINY, ["train.max_steps=50", "model.channels=4"]), [data], run, quiet=True)


def test_max_steps_zero_writes_the_untrained_model(data: Path, tmp_path: Path) -> None:
    train(load_config(TINY, ["train.max_steps=0"]), [data], tmp_path / "r0", quiet=True)
    ckpt = checkpoint.load(tmp_path / "r0" / "latest.pt")
    assert ckpt.meta["steps"] == 0
    assert all((p == 0).all() for p in (ckpt.model.out.weight, ckpt.model.out.bias))


def test_init_starts_from_a_checkpoint_and_refuses_another_architecture(data: Path, tmp_path: Path) -> None:
    cfg = load_config(TINY, ["train.max_steps=10", "train.lr=1e-2"])
    train(cfg, [data], tmp_path / "a", quiet=True)
    src = checkpoint.load(tmp_path / "a" / "latest.pt")
    init = tmp_path / "a" / "latest.pt"
    train(load_config(TINY, ["train.max_steps=0"]), [data], tmp_path / "b", quiet=True, init=init)
    b = checkpoint.load(tmp_path / "b" / "latest.pt")
    for k, v in src.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    assert torch.equal(b.tracker.values, src.tracker.values) and b.meta["init"].endswith("latest.pt")
    with pytest.raises(UserError, match="--init needs the same"):
        train(load_config(TINY, ["train.max_steps=1", "model.channels=4"]), [data], tmp_path / "c", quiet=True,
              init=tmp_path / "a" / "latest.pt")


def test_init_starts_a_low_byte_specialist_from_an_all_16_bit_model(data: Path, tmp_path: Path) -> None:
    """A known_bits = 8 run may start from a known_bits = 0 model: it scores the low byte exactly as
    that model did (its low-byte output rows; test_model checks the logits); the reverse is refused."""
    full = load_config(TINY, ["ardm.known_bits=0", "train.max_steps=10", "train.lr=1e-2"])
    train(full, [data], tmp_path / "a", quiet=True)
    init = tmp_path / "a" / "latest.pt"
    low = load_config(TINY, ["train.max_steps=0"])
    train(low, [data], tmp_path / "b", quiet=True, init=init)
    a, b = checkpoint.load(init), checkpoint.load(tmp_path / "b" / "latest.pt")
    assert b.known_bits == 8 and b.model.out.out_channels == 256 and a.model.out.out_channels == 512
    torch.testing.assert_close(b.model.out.weight, a.model.out.weight[256:])
    with pytest.raises(UserError, match="--init needs the same"):
        train(full, [data], tmp_path / "c", quiet=True, init=tmp_path / "b" / "latest.pt")


def test_init_may_switch_on_the_interval_features_input_but_not_off(data: Path, tmp_path: Path) -> None:
    """The widened model starts with a zero column for the new input (test_model checks the logits)."""
    train(load_config(TINY, ["train.max_steps=5", "train.lr=1e-2"]), [data], tmp_path / "a", quiet=True)
    init = tmp_path / "a" / "latest.pt"
    wide = load_config(TINY, ["train.max_steps=0", "model.interval_features=true"])
    train(wide, [data], tmp_path / "b", quiet=True, init=init)
    a, b = checkpoint.load(init), checkpoint.load(tmp_path / "b" / "latest.pt")
    wa, wb = a.model.input_conv.weight, b.model.input_conv.weight
    assert wb.shape[1] == wa.shape[1] + 1 and torch.equal(wb[:, :-1], wa) and not wb[:, -1].any()
    with pytest.raises(UserError, match="--init needs the same"):
        train(load_config(TINY, ["train.max_steps=1"]), [data], tmp_path / "c", quiet=True,
              init=tmp_path / "b" / "latest.pt")


def test_same_seed_same_training(data: Path, tmp_path: Path) -> None:
    cfg = load_config(TINY, ["train.max_steps=5"])
    a = train(cfg, [data], tmp_path / "a", quiet=True)
    b = train(cfg, [data], tmp_path / "b", quiet=True)
    assert a["bpd"] == b["bpd"]


@pytest.mark.slow
def test_torchrun_ddp_on_cpu_with_gloo(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29561",
           "-m", "upscale_audio", "train", str(data), "--config", str(TINY), "--run-dir", str(run),
           "--max-steps", "6", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    ckpt = checkpoint.load(run / "latest.pt")
    assert ckpt.meta["steps"] == 6 and ckpt.meta["world_size"] == 2
