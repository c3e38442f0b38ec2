from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import speechlike
from upscale_audio import audio
from upscale_audio.errors import UserError


def test_8bit_unsigned_maps_to_v_times_256(tmp_path: Path) -> None:
    v = np.arange(256, dtype=np.uint8)
    p = tmp_path / "u8.wav"
    # write raw unsigned 8-bit through soundfile from the int16 view: s = (v - 128) * 256
    sf.write(p, ((v.astype(np.int16) - 128) * 256), 8000, subtype="PCM_U8")
    a = audio.read(p)
    assert a.subtype == "PCM_U8" and a.significant_bits == 8 and a.rate == 8000
    np.testing.assert_array_equal(a.u[0], v.astype(np.int64) * 256)


@pytest.mark.parametrize("subtype,fmt", [("PCM_16", "WAV"), ("PCM_16", "FLAC"), ("PCM_24", "WAV"), ("FLOAT", "WAV")])
def test_16bit_material_reads_exactly_in_any_container(tmp_path: Path, subtype: str, fmt: str) -> None:
    x = speechlike(1000, channels=2)
    p = tmp_path / f"x.{fmt.lower()}"
    data = x.T.astype(np.float32) / 32768 if subtype == "FLOAT" else x.T
    sf.write(p, data, 22050, subtype=subtype, format=fmt)
    a = audio.read(p)
    assert a.channels == 2 and a.frames == 1000 and a.significant_bits == 16
    np.testing.assert_array_equal(a.samples, x)


def test_deeper_than_16_bits_is_flagged(tmp_path: Path) -> None:
    x = (np.random.default_rng(0).normal(0, 0.1, 500)).astype(np.float32)
    sf.write(tmp_path / "f.wav", x, 16000, subtype="FLOAT")
    sf.write(tmp_path / "p24.wav", (x * 2**23).astype(np.int32) << 8, 16000, subtype="PCM_24")
    for name in ("f.wav", "p24.wav"):
        a = audio.read(tmp_path / name)
        assert a.samples is None and a.significant_bits > 16


def test_significant_bits_of_truncated_16bit_file(tmp_path: Path) -> None:
    x = speechlike(2000)
    y = ((x.astype(np.int64) >> 6) << 6).astype(np.int16)  # top 10 bits kept
    sf.write(tmp_path / "t.wav", y.T, 16000, subtype="PCM_16")
    assert audio.read(tmp_path / "t.wav").significant_bits == 10


@pytest.mark.parametrize("make,msg", [
    (lambda p: p.write_bytes(b"not audio at all" * 10), "cannot read"),
    (lambda p: sf.write(p, np.zeros((0, 1), np.int16), 8000, subtype="PCM_16"), "no samples"),
])
def test_bad_files_raise_one_line_user_errors(tmp_path: Path, make, msg) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "bad.wav"
    make(p)
    with pytest.raises(UserError, match=msg) as e:
        audio.read(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_truncated_wav_is_detected(tmp_path: Path) -> None:
    p = tmp_path / "t.wav"
    sf.write(p, speechlike(5000).T, 16000, subtype="PCM_16")
    p.write_bytes(p.read_bytes()[:3000])
    with pytest.raises(UserError, match="truncated"):
        audio.read(p)


def test_missing_and_directory_inputs(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        audio.read(tmp_path / "nope.wav")
    with pytest.raises(UserError, match="no audio"):
        audio.find_audio([tmp_path])


def test_find_audio_walks_directories_with_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ("a/x.wav", "a/b/y.flac", "a/notes.txt"):
        (tmp_path / rel).write_bytes(b"")
    found = audio.find_audio([tmp_path / "a"])
    assert [str(r) for _, r in found] == ["b/y.flac", "x.wav"]


def test_write_is_atomic_and_never_overwrites_without_force(tmp_path: Path) -> None:
    x = speechlike(800, channels=2)
    p = tmp_path / "out.flac"
    audio.write(p, x, 16000)
    np.testing.assert_array_equal(audio.read(p).samples, x)
    with pytest.raises(UserError, match="--force"):
        audio.write(p, x[:, :10], 16000)
    assert audio.read(p).frames == 800  # untouched
    audio.write(p, x[:, :10], 16000, force=True)
    assert audio.read(p).frames == 10
    assert [f.name for f in tmp_path.iterdir()] == ["out.flac"]  # no temp files left
    with pytest.raises(UserError, match=".wav or .flac"):
        audio.write(tmp_path / "o.mp3", x, 16000)


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(sf, "write", boom)
    with pytest.raises(OSError):
        audio.write(tmp_path / "o.wav", speechlike(100), 16000)
    assert list(tmp_path.iterdir()) == []


def test_significant_bits_is_the_depth_of_the_deepest_sample() -> None:
    rng = np.random.default_rng(0)
    for shift in range(16):
        x = ((rng.integers(-32768, 32768, (2, 50)) >> shift) << shift).astype(np.int16)
        x[0, 0] = -32768 + (1 << shift)  # one sample uses bit `shift` (of u = x + 32768)
        assert audio.significant_bits(x) == 16 - shift
    assert audio.significant_bits(np.zeros((1, 5), np.int16)) == 1  # digital silence


def test_a_model_free_restore_imports_neither_torch_nor_numba() -> None:
    import subprocess
    import sys

    code = ("import sys, upscale_audio.cli, upscale_audio.audio, upscale_audio.intervals; "
            "print('torch' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
