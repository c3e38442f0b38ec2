"""The Python API: the README's example runs as written; restore, score, compress/decompress."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import upscale_audio as ua
from tests.conftest import save_tiny_model, speechlike
from upscale_audio import intervals, metrics

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_python_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- the block below is run by tests/test_api.py -->\n```python\n(.*?)```", text, re.S)
    assert block is not None, "the README lost its Python example"
    monkeypatch.chdir(ROOT)
    exec(compile(block.group(1), "README.md", "exec"), {})


def test_restore_keeps_known_values_for_linear_and_g711(tmp_path: Path) -> None:
    model = save_tiny_model(tmp_path / "m.pt", (8, 8), 0)
    x = speechlike(1500, channels=2)
    for bits in (4, 8, 12):
        y = ua.restore(x, bits=bits, model=model, mode="sample", steps=2)
        assert y.shape == x.shape and y.dtype == np.int16
        np.testing.assert_array_equal(y >> (16 - bits), x >> (16 - bits))
    dec = intervals.decoded("alaw")[intervals.g711_encode(x.astype(np.int64) + 32768, "alaw")] - 32768
    y = ua.restore(dec.astype(np.int16), law="alaw", model=model)
    lo, hi = intervals.g711(intervals.g711_encode(x.astype(np.int64) + 32768, "alaw"), "alaw")
    assert intervals.check_inside(y.astype(np.int64) + 32768, lo, hi)
    with pytest.raises(ValueError):
        ua.restore(x, model=model)
    with pytest.raises(TypeError):
        ua.restore(x.astype(np.float32), bits=8, model=model)


def test_compress_decompress_bytes_round_trip(tmp_path: Path) -> None:
    model = save_tiny_model(tmp_path / "m.pt", (8, 8), 0)
    x = speechlike(2000, channels=2)
    back, rate = ua.decompress(ua.compress(x, 22050, steps=2, model=model), model=model)
    assert rate == 22050
    np.testing.assert_array_equal(back, x)


def test_compare_agrees_with_the_benchmark_snr(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.test_cli import run

    x = speechlike(16000)
    y = (x.astype(np.int64) + np.random.default_rng(0).integers(-300, 300, x.shape)).clip(-32768, 32767)
    sf.write(tmp_path / "o.wav", x.T, 16000, subtype="PCM_16")
    sf.write(tmp_path / "r.wav", y.astype(np.int16).T, 16000, subtype="PCM_16")
    code, out, err = run(["compare", tmp_path / "o.wav", tmp_path / "r.wav", "--json", "--png", tmp_path / "s.png"],
                         capsys, monkeypatch)
    assert code == 0, err
    r = json.loads(out)["results"][0]
    want = 10 * np.log10(np.sum(x.astype(float) ** 2) / np.sum((x.astype(float) - y) ** 2))
    assert r["snr_db"] == pytest.approx(want, abs=1e-9)
    assert r["snr_db"] == pytest.approx(metrics.snr_db(x.astype(np.int64) + 32768 - 32768, y), abs=1e-9)
    assert 0 < r["lsd"] < 5 and -10 <= r["segsnr_db"] <= 35
    assert (tmp_path / "s.png").stat().st_size > 10_000
    assert metrics.lsd(x, x) == 0.0


def test_lsd_grows_with_the_noise() -> None:
    x = speechlike(16000).astype(np.float64)
    rng = np.random.default_rng(1)
    small, big = [metrics.lsd(x, x + rng.normal(0, s, x.shape)) for s in (10, 1000)]
    assert 0 < small < big
