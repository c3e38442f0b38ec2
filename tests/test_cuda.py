"""CUDA path: skipped without a GPU (CI has none); run on a lent GPU by benchmarks/gpu_check.sh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import TINY, save_tiny_model, speechlike
from upscale_audio import bits, checkpoint
from upscale_audio.config import load_config
from upscale_audio.enhance import enhance_array
from upscale_audio.scoring import bits_per_sample
from upscale_audio.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
CUDA = torch.device("cuda")


def test_cuda_logits_match_cpu_under_bf16(tmp_path: Path) -> None:
    ckpt = checkpoint.load(save_tiny_model(tmp_path / "m.pt", channels=32, blocks=6))
    u = torch.from_numpy(speechlike(4000, channels=2).astype(np.int64) + 32768)
    maps = ckpt.maps
    stage = torch.tensor([1, 1])
    past, future, target = maps.split(u, stage)
    rev = (torch.rand(2, 4000) < 0.3)
    v = torch.where(rev, future, past)
    tf = torch.tensor([0.6, 0.6])
    cpu = ckpt.model(v, rev.float(), stage, tf)
    m = ckpt.model.to(CUDA)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        gpu = m(v.to(CUDA), rev.float().to(CUDA), stage.to(CUDA), tf.to(CUDA)).float().cpu()
    p_cpu, p_gpu = torch.softmax(cpu, -1), torch.softmax(gpu, -1)
    assert (p_cpu - p_gpu).abs().max() < 0.02


def test_enhance_on_cuda_keeps_known_bits_and_matches_chunking(tmp_path: Path) -> None:
    ckpt = checkpoint.load(save_tiny_model(tmp_path / "m.pt", (8, 8), 0))
    u = speechlike(3000, channels=2).astype(np.int64) + 32768
    a = enhance_array(u, 8, ckpt, steps=4, seed=1, device=CUDA, chunk=700)
    b = enhance_array(u, 8, ckpt, steps=4, seed=1, device=CUDA, chunk=3000)
    np.testing.assert_array_equal(bits.keep_top_bits(a.u, 8), bits.keep_top_bits(u, 8))
    assert (a.u != b.u).mean() < 0.01  # bf16 differences between batch shapes may flip rare draws
    r = bits_per_sample([u], ckpt, given_bits=8, passes=2, device=CUDA)
    assert 0 < r.bits_per_sample < 9


def test_training_runs_on_cuda_with_bf16(tmp_path: Path) -> None:
    cfg = load_config(TINY, ["train.max_steps=6"])
    data = tmp_path / "data"
    data.mkdir()
    import soundfile as sf

    sf.write(data / "a.wav", speechlike(20000).T, 16000, subtype="PCM_16")
    rec = train(cfg, [data], tmp_path / "run", [data], quiet=True)
    assert rec["step"] == 6 and np.isfinite(rec["val_bpd"])
    assert checkpoint.load(tmp_path / "run" / "latest.pt").meta["steps"] == 6
