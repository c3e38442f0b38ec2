from __future__ import annotations

from pathlib import Path

import pytest

from upscale_audio.config import RunConfig, apply_overrides, load_config, to_toml
from upscale_audio.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["tiny", "default", "lowbyte", "paper"])
def test_shipped_configs_load_and_round_trip_through_toml(name: str, tmp_path: Path) -> None:
    cfg = load_config(ROOT / "configs" / f"{name}.toml")
    p = tmp_path / "c.toml"
    p.write_text(to_toml(cfg))
    assert load_config(p) == cfg
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_paper_config_is_the_papers_network() -> None:
    cfg = load_config(ROOT / "configs" / "paper.toml")
    assert (cfg.model.blocks, cfg.model.channels, cfg.model.dilation_cycle) == (36, 256, 12)


def test_overrides_are_typed() -> None:
    cfg = load_config(None, ["train.lr=3e-4", "ardm.schedule=[4,4,4,4]", "model.features=plain"])
    assert cfg.train.lr == 3e-4 and cfg.ardm.schedule == (4, 4, 4, 4) and cfg.model.features == "plain"
    assert load_config(None, ["train.lr=1"]).train.lr == 1.0  # int accepted for float
    with pytest.raises(UserError, match="expected int"):
        load_config(None, ["train.batch_size=2.5"])
    with pytest.raises(UserError, match="unknown key"):
        load_config(None, ["train.learning_rate=1e-3"])
    with pytest.raises(UserError, match="section.key=value"):
        apply_overrides({}, ["lr=3"])


@pytest.mark.parametrize("bad", ["ardm.schedule=[8,4]", "ardm.known_bits=16", "model.features=fancy",
                                 "model.kernel_size=2"])
def test_invalid_configs_are_refused(bad: str) -> None:
    with pytest.raises(UserError):
        load_config(None, [bad])


def test_missing_or_broken_config_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "none.toml")
    (tmp_path / "b.toml").write_text("[train\nlr=")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(tmp_path / "b.toml")


def test_stage_draw_needs_one_positive_weight_per_modelled_stage() -> None:
    assert load_config(None, ["ardm.known_bits=0", "ardm.stage_draw=[1, 3]"]).ardm.stage_draw == (1, 3)
    for bad in (["ardm.known_bits=8", "ardm.stage_draw=[1, 3]"], ["ardm.known_bits=0", "ardm.stage_draw=[0, 3]"]):
        with pytest.raises(UserError, match="stage_draw"):
            load_config(None, bad)


def test_t_zero_share_must_be_a_share() -> None:
    assert load_config(None, ["ardm.t_zero_share=0.5"]).ardm.t_zero_share == 0.5
    for bad in ("1.0", "-0.1"):
        with pytest.raises(UserError, match="t_zero_share"):
            load_config(None, [f"ardm.t_zero_share={bad}"])
