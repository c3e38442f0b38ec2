"""The ONNX Runtime trunk (engine.py): same logits as PyTorch, used only when it matches its checkpoint."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import save_tiny_model, speechlike
from tests.test_cli import run
from upscale_audio import audio, checkpoint, engine, intervals
from upscale_audio.enhance import enhance_intervals
from upscale_audio.errors import UserError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def _inputs(model: torch.nn.Module, B: int = 2, T: int = 777) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(B, model.input_conv.in_channels, T, generator=g)
    value = torch.randint(0, 1 << 16, (B, T), generator=g)
    temb = model.step_embedding(torch.rand(B, generator=g))
    return feats, value, temb


def test_the_onnx_trunk_computes_what_the_torch_trunk_does(tmp_path: Path) -> None:
    """Any batch and length (both dynamic in the export), to float32 rounding."""
    pt = save_tiny_model(tmp_path / "m.pt", known_bits=0)
    ck = checkpoint.load(pt)
    engine.export_onnx(ck.model, ck.sha256, engine.onnx_path(pt))
    trunk = engine.load_trunk(pt, ck.sha256, "onnx", 1)
    assert trunk is not None
    for B, T in ((1, 100), (3, 2500)):
        feats, value, temb = _inputs(ck.model, B, T)
        with torch.no_grad():
            want = ck.model.trunk(feats, value, temb)
        got = trunk(feats, value, temb)
        assert got.shape == want.shape
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-4), float((got - want).abs().max())


def test_an_onnx_trunk_is_used_only_beside_its_own_checkpoint(tmp_path: Path) -> None:
    pt = save_tiny_model(tmp_path / "m.pt", known_bits=0)
    ck = checkpoint.load(pt)
    assert engine.load_trunk(pt, ck.sha256, "auto", 1) is None  # no .onnx: PyTorch
    with pytest.raises(UserError, match="export --onnx"):
        engine.load_trunk(pt, ck.sha256, "onnx", 1)
    engine.export_onnx(ck.model, ck.sha256, engine.onnx_path(pt))
    assert engine.load_trunk(pt, ck.sha256, "auto", 1) is not None
    assert engine.load_trunk(pt, ck.sha256, "torch", 1) is None
    # the checkpoint changed after the export: auto falls back to PyTorch, onnx refuses
    other = save_tiny_model(tmp_path / "other.pt", known_bits=0)
    pt.write_bytes(other.read_bytes())
    sha = hashlib.sha256(pt.read_bytes()).hexdigest()
    assert engine.load_trunk(pt, sha, "auto", 1) is None
    with pytest.raises(UserError, match="another checkpoint"):
        engine.load_trunk(pt, sha, "onnx", 1)
    engine.onnx_path(pt).write_bytes(b"not onnx")
    with pytest.raises(UserError, match="not a readable ONNX model"):
        engine.load_trunk(pt, sha, "auto", 1)


@pytest.mark.parametrize("name", ["default", "lowbyte"])
def test_the_bundled_onnx_trunks_belong_to_the_bundled_models(name: str) -> None:
    """A stale shipped .onnx would silently fall back to PyTorch (slow): each must carry its
    checkpoint's sha256 and compute its trunk."""
    pt = checkpoint.MODELS_DIR / f"{name}.pt"
    ck = checkpoint.load(pt)
    trunk = engine.load_trunk(pt, ck.sha256, "onnx", 1)
    assert trunk is not None
    feats, value, temb = _inputs(ck.model, 1, 3000)
    with torch.no_grad():
        want = ck.model.trunk(feats, value, temb)
    assert torch.allclose(trunk(feats, value, temb), want, rtol=1e-4, atol=1e-4)


def test_a_restore_under_onnx_keeps_every_known_bit_and_nearly_every_sample(tmp_path: Path) -> None:
    pt = save_tiny_model(tmp_path / "m.pt", known_bits=0)
    ck = checkpoint.load(pt)
    engine.export_onnx(ck.model, ck.sha256, engine.onnx_path(pt))
    u = speechlike(4000).astype(np.int64) + 32768
    lo, hi = intervals.linear(u, 8)
    a = enhance_intervals(lo, hi, ck, mode="mean", engine="torch").u
    b = enhance_intervals(lo, hi, ck, mode="mean", engine="onnx").u
    assert intervals.check_inside(b, lo, hi)
    assert np.mean(a != b) < 0.01 and np.abs(a - b).max() <= 2


def test_cli_engine_onnx_without_an_onnx_file_says_how_to_make_one(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pt = save_tiny_model(tmp_path / "m.pt", known_bits=0)
    src = tmp_path / "in.wav"
    audio.write_u8(src, speechlike(2000), 16000)
    code, _, err = run(["enhance", src, "--model", pt, "--engine", "onnx"], capsys, monkeypatch)
    assert code != 0 and "export --onnx" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "in.16bit.wav").exists()
    code, _, err = run(["export", pt, "--onnx"], capsys, monkeypatch)
    assert code == 0, err
    out = tmp_path / "copy.pt"  # an existing OUT.onnx is refused before OUT is written
    (tmp_path / "copy.onnx").write_bytes(b"mine")
    code, _, err = run(["export", pt, out, "--onnx"], capsys, monkeypatch)
    assert code != 0 and "exists" in err and not out.exists() and (tmp_path / "copy.onnx").read_bytes() == b"mine"
    code, _, err = run(["enhance", src, "--model", pt, "--engine", "onnx"], capsys, monkeypatch)
    assert code == 0 and "(onnx)" in err, err
    assert sf.info(tmp_path / "in.16bit.wav").subtype == "PCM_16"
