"""What an input already knows decides what enhance may change: format first, values only with
evidence, G.711 bins for mu-law/A-law (WAV, .au, headerless), and every known value kept."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import save_tiny_model, speechlike
from tests.test_cli import run
from upscale_audio import audio, intervals


def _wav(path: Path, x: np.ndarray, subtype: str, rate: int = 16000, fmt: str = "WAV") -> Path:
    sf.write(path, np.asarray(x, dtype=np.int16).T, rate, subtype=subtype, format=fmt)
    return path


@pytest.mark.parametrize("name,x,subtype", [
    ("silent8", np.zeros((1, 3000)), "PCM_U8"),
    ("near_silent8", np.tile([0, 256, 0, -256], (1, 500)), "PCM_U8"),
    ("sparse8", (np.random.default_rng(0).integers(-32, 32, (1, 4000)) * 1024), "PCM_U8"),
    ("one8", np.array([[1280]]), "PCM_U8"),
    ("one_sample_stereo8", np.array([[256], [-512]]), "PCM_U8"),
])
@pytest.mark.parametrize("method", ["bin-centre", "ardm"])
def test_every_known_8_bit_value_is_kept(tmp_path: Path, capsys, monkeypatch, name, x, subtype, method) -> None:  # type: ignore[no-untyped-def]
    src = _wav(tmp_path / f"{name}.wav", x, subtype)
    model = save_tiny_model(tmp_path / "m.pt", (8, 8), 0)
    code, _, err = run(["enhance", src, "--method", method, "--model", model, "--mode", "mean"], capsys, monkeypatch)
    assert code == 0, err
    assert "8 known bits (format PCM_U8)" in err
    a = sf.read(src, dtype="int16", always_2d=True)[0].astype(np.int64)
    b = sf.read(tmp_path / f"{name}.16bit.wav", dtype="int16", always_2d=True)[0].astype(np.int64)
    np.testing.assert_array_equal(a >> 8, b >> 8)


def test_a_silent_16_bit_file_passes_through_unchanged(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    src = _wav(tmp_path / "s.wav", np.zeros((2, 5000)), "PCM_16")
    code, _, err = run(["enhance", src], capsys, monkeypatch)
    assert code == 0 and "digital silence" in err
    assert np.array_equal(sf.read(tmp_path / "s.16bit.wav", dtype="int16")[0], sf.read(src, dtype="int16")[0])


def test_a_16_bit_file_without_evidence_of_its_depth_is_refused_in_one_line(tmp_path: Path, capsys,
                                                                           monkeypatch) -> None:  # type: ignore[no-untyped-def]
    src = _wav(tmp_path / "n.wav", np.tile([0, 256, 0, -256], (1, 50)), "PCM_16")
    code, _, err = run(["enhance", src, "--method", "bin-centre"], capsys, monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--bits" in err
    assert not (tmp_path / "n.16bit.wav").exists()
    code, _, err = run(["enhance", src, "--method", "bin-centre", "--bits", "8"], capsys, monkeypatch)
    assert code == 0 and "(--bits)" in err


def test_depth_is_detected_in_a_16_bit_file_with_evidence(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    x = (speechlike(8000).astype(np.int64) >> 4) << 4  # 12 bits in use
    src = _wav(tmp_path / "d.wav", x, "PCM_16")
    code, _, err = run(["enhance", src, "--method", "bin-centre"], capsys, monkeypatch)
    assert code == 0 and "12 known bits (detected)" in err


@pytest.mark.parametrize("law,subtype", [("ulaw", "ULAW"), ("alaw", "ALAW")])
@pytest.mark.parametrize("container", ["WAV", "AU", "raw"])
def test_g711_restores_inside_its_bins_and_re_encodes_to_the_input_codes(
    tmp_path: Path, capsys, monkeypatch, law: str, subtype: str, container: str  # type: ignore[no-untyped-def]
) -> None:
    x = speechlike(3000, rate=8000)
    model = save_tiny_model(tmp_path / "m.pt", (8, 8), 0)
    if container == "raw":
        buf = io.BytesIO()
        sf.write(buf, x.T, 8000, subtype=subtype, format="RAW")
        src = tmp_path / "in.ul"
        src.write_bytes(buf.getvalue())
        extra = ["--raw", law, "--rate", "8000"]
    else:
        src = _wav(tmp_path / ("in.au" if container == "AU" else "in.wav"), x, subtype, 8000, container)
        extra = []
    runs = {"mean": ["--model", model, "--mode", "mean"], "lmmse": ["--method", "lmmse"],
            "sample": ["--model", model, "--mode", "sample", "--steps", "2"]}
    for name, how in runs.items():
        out = tmp_path / f"out_{name}.wav"
        code, _, err = run(["enhance", src, "-o", out, *how, *extra], capsys, monkeypatch)
        assert code == 0, err
        assert ("lmmse" in err) == (name == "lmmse")  # a user's model runs itself, even for a G.711 mean
        assert f"G.711 {audio.LAW_NAMES[law]}" in err
        codes_in = np.frombuffer(_g711_bytes(src, subtype, container), dtype=np.uint8)
        u = sf.read(out, dtype="int16")[0].astype(np.int64) + 32768
        for encoder in (intervals.libsndfile_codes(law), intervals.sox_codes(law)):
            np.testing.assert_array_equal(encoder[u], codes_in)


def _g711_bytes(src: Path, subtype: str, container: str) -> bytes:
    """The G.711 codes a file holds."""
    if container == "raw":
        return src.read_bytes()
    x = sf.read(src, dtype="int16")[0]
    buf = io.BytesIO()
    sf.write(buf, x, 8000, subtype=subtype, format="RAW")
    return buf.getvalue()


def test_a_low_bits_model_refuses_g711_in_one_line(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    src = _wav(tmp_path / "in.wav", speechlike(2000, rate=8000), "ULAW", 8000)
    model = save_tiny_model(tmp_path / "m.pt", (8, 8), 8)
    code, _, err = run(["enhance", src, "--model", model], capsys, monkeypatch)
    assert code == 2 and "bin-centre" in err and len(err.strip().splitlines()) == 1


def test_bpd_scores_what_g711_leaves_open(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    src = _wav(tmp_path / "in.wav", speechlike(3000), "PCM_16")
    model = save_tiny_model(tmp_path / "m.pt", (8, 8), 0, perturb=False)  # uniform over the open values
    code, out, err = run(["bpd", src, "--model", model, "--given", "ulaw", "--json", "--steps", "2"], capsys,
                         monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert d["given"] == "ulaw" and d["stderr"] == 0.0
    # equal logits weigh each allowed digit by the share of it the bin allows: uniform over the bin's
    # values, so each sample costs log2 of its bin's width, whatever the draws (the high byte costs
    # log2(width / part) and the low byte log2(part), part what the bin keeps of the true high byte)
    u = sf.read(src, dtype="int16")[0].astype(np.int64) + 32768
    lo, hi = intervals.g711_of_u(u, "ulaw")
    assert d["bits_per_sample"] == pytest.approx(float(np.mean(np.log2(hi - lo))), abs=1e-3)


def test_bpd_json_with_one_pass_has_a_null_error_bar(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    src = _wav(tmp_path / "in.wav", speechlike(2000), "PCM_16")
    model = save_tiny_model(tmp_path / "m.pt", (8, 8), 8)
    code, out, _ = run(["bpd", src, "--model", model, "--json", "--passes", "1"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["stderr"] is None and "NaN" not in out
