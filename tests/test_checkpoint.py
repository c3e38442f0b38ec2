from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import save_tiny_model
from upscale_audio import checkpoint
from upscale_audio.config import RunConfig
from upscale_audio.errors import UserError
from upscale_audio.model import build_model


def test_save_load_gives_identical_outputs_with_weights_only(tmp_path: Path) -> None:
    p = save_tiny_model(tmp_path / "m.pt")
    raw = torch.load(p, weights_only=True)  # no pickled objects inside
    assert raw["format"] == checkpoint.FORMAT and raw["format_version"] == checkpoint.FORMAT_VERSION
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in raw["model"])
    a = checkpoint.load(p)
    # the model rebuilt from the embedded config with the stored weights equals one built by hand
    fresh = build_model(RunConfig.from_dict(raw["config"]))
    fresh.load_state_dict(raw["model"])
    fresh.eval()
    u = torch.randint(0, 65536, (2, 300))
    args = (u, torch.zeros(2, 300), torch.tensor([1, 1]), torch.tensor([0.5, 0.5]))
    out = a.model(*args)
    torch.testing.assert_close(out, fresh(*args), rtol=0, atol=0)
    assert out.abs().sum() > 0  # perturbed weights: not the all-zero head
    assert a.config.to_dict() == raw["config"] and len(a.sha256) == 64


def test_unknown_version_and_foreign_files_are_refused(tmp_path: Path) -> None:
    p = save_tiny_model(tmp_path / "m.pt")
    raw = torch.load(p, weights_only=True)
    raw["format_version"] = 99
    torch.save(raw, tmp_path / "v99.pt")
    with pytest.raises(UserError, match="format version 99"):
        checkpoint.load(tmp_path / "v99.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00junk")
    for name in ("other.pt", "junk.pt", "missing.pt"):
        with pytest.raises(UserError):
            checkpoint.load(tmp_path / name)


def test_strict_keys(tmp_path: Path) -> None:
    p = save_tiny_model(tmp_path / "m.pt")
    raw = torch.load(p, weights_only=True)
    raw["model"]["extra.weight"] = torch.zeros(1)
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(UserError, match="do not match"):
        checkpoint.load(tmp_path / "bad.pt")


def test_policies_and_recommended_budget(tmp_path: Path) -> None:
    ckpt = checkpoint.load(save_tiny_model(tmp_path / "m.pt"))
    pol = ckpt.policies(4)
    assert set(pol) == {1} and len(pol[1]) == 4 and pol[1][0] == 0
    raw = torch.load(ckpt.path, weights_only=True)  # type: ignore[arg-type]
    costs = [raw["policies"][str(K)]["expected_bits"] for K in checkpoint.DEFAULT_BUDGETS]
    assert all(a >= b - 1e-9 for a, b in zip(costs, costs[1:]))
    assert ckpt.recommended_steps() in checkpoint.DEFAULT_BUDGETS


def test_export_strips_training_state(tmp_path: Path) -> None:
    p = save_tiny_model(tmp_path / "m.pt")
    raw = torch.load(p, weights_only=True)
    raw["training"] = {"step": 3}
    torch.save(raw, p)
    checkpoint.export(p, tmp_path / "e.pt")
    assert "training" not in torch.load(tmp_path / "e.pt", weights_only=True)
    with pytest.raises(UserError, match="exists"):
        checkpoint.export(p, tmp_path / "e.pt")
