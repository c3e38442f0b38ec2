"""The .uad codec: bit-exact round trips, cost equal to the model's exact policy cost, refusals."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import save_tiny_model, speechlike
from upscale_audio import codec
from upscale_audio.checkpoint import load
from upscale_audio.errors import UserError
from upscale_audio.scoring import bits_per_sample

CHUNK, BLOCK = 300, 1000  # small, so that files span several windows and blocks


@pytest.fixture
def full_model(tmp_path: Path) -> Path:
    """A tiny model of all 16 bits (the codec needs known_bits 0)."""
    return save_tiny_model(tmp_path / "full.pt", schedule=(8, 8), known_bits=0)


def _edge_cases() -> dict[str, tuple[np.ndarray, str]]:
    rng = np.random.default_rng(1)
    square = np.where((np.arange(2500) // 40) % 2 == 0, 32767, -32768)[None]
    return {
        "silence": (np.zeros((1, 1500)), "PCM_16"),
        "square": (square, "PCM_16"),
        "noise": (rng.integers(-32768, 32768, (1, 2100)), "PCM_16"),
        "one_sample": (np.array([[-1234]]), "PCM_16"),
        "stereo": (speechlike(2300, channels=2), "PCM_16"),
        "eight_bit": ((speechlike(1800) // 256) * 256, "PCM_U8"),
        "deep_container": (speechlike(1200), "PCM_24"),
    }


def _roundtrip(tmp_path: Path, ckpt, x: np.ndarray, subtype: str, steps: int = 3):  # type: ignore[no-untyped-def]
    src = tmp_path / f"in_{subtype}.wav"
    sf.write(src, x.astype(np.int16).T, 16000, subtype=subtype)
    uad, out = tmp_path / "x.uad", tmp_path / "out.wav"
    st = codec.compress_file(src, uad, ckpt, steps, block_frames=BLOCK, chunk=CHUNK)
    codec.decompress_file(uad, out, ckpt)
    return src, uad, out, st


@pytest.mark.parametrize("case", list(_edge_cases()))
def test_round_trip_is_bit_exact(tmp_path: Path, full_model: Path, case: str) -> None:
    x, subtype = _edge_cases()[case]
    ckpt = load(full_model)
    src, uad, out, st = _roundtrip(tmp_path, ckpt, x, subtype)
    a, b = sf.read(src, dtype="int32", always_2d=True)[0], sf.read(out, dtype="int32", always_2d=True)[0]
    assert np.array_equal(a, b)
    assert sf.info(str(out)).subtype == subtype and sf.info(str(out)).samplerate == 16000
    codec.verify(src, uad, ckpt)


def test_cost_is_the_models_exact_policy_cost(tmp_path: Path, full_model: Path) -> None:
    """The ANS payload is within 1% of the model's exact code length, and that is what
    ``bpd --steps K`` reports for the same file: the same walk, the same orders."""
    ckpt = load(full_model)
    x = speechlike(2600, channels=2)
    _, _, _, st = _roundtrip(tmp_path, ckpt, x, "PCM_16", steps=4)
    assert 0.99 < st.payload_bits / st.model_bits < 1.01
    one_block = codec.compress_file(tmp_path / "in_PCM_16.wav", tmp_path / "one.uad", ckpt, 4, chunk=CHUNK)
    bpd = bits_per_sample([x.astype(np.int64) + 32768], ckpt, steps=4, chunk=CHUNK)
    # the same numbers summed in another order (the encoder walks in reverse)
    assert bpd.bits_per_sample * bpd.samples == pytest.approx(one_block.model_bits, rel=1e-12)


def test_zero_low_stages_are_not_coded(tmp_path: Path, full_model: Path) -> None:
    ckpt = load(full_model)
    u8 = (speechlike(900).astype(np.int64) + 32768) & 0xFF00
    assert codec.coded_stages(u8, (8, 8)) == 1
    assert codec.coded_stages(u8 | 1, (8, 8)) == 2
    assert codec.coded_stages(u8, (4, 4, 4, 4)) == 2
    _, _, _, st8 = _roundtrip(tmp_path, ckpt, u8 - 32768, "PCM_16")
    _, _, _, st16 = _roundtrip(tmp_path, ckpt, speechlike(900), "PCM_16")
    assert st8.payload_bits < 0.7 * st16.payload_bits


def test_a_model_of_only_the_low_bits_is_refused(tmp_path: Path, tiny_model: Path) -> None:
    src = tmp_path / "a.wav"
    sf.write(src, speechlike(500).T, 16000, subtype="PCM_16")
    with pytest.raises(UserError, match="needs a model of all 16 bits"):
        codec.compress_file(src, tmp_path / "a.uad", load(tiny_model), 2)


def test_verify_catches_a_file_that_does_not_match(tmp_path: Path, full_model: Path) -> None:
    ckpt = load(full_model)
    x = speechlike(2 * BLOCK)  # whole blocks, so a longer file matches block for block, then goes on
    src, uad, _, _ = _roundtrip(tmp_path, ckpt, x, "PCM_16")
    other = tmp_path / "other.wav"
    sf.write(other, (x // 2).T, 16000, subtype="PCM_16")
    longer = tmp_path / "longer.wav"
    sf.write(longer, np.concatenate([x, speechlike(300)], axis=1).T, 16000, subtype="PCM_16")
    codec.verify(src, uad, ckpt)
    for wrong in (other, longer):
        with pytest.raises(UserError, match="--verify failed"):
            codec.verify(wrong, uad, ckpt)


def test_header_round_trip() -> None:
    h = codec.Header(b"0123456789abcdef", 44100, 2, 123456789, "PCM_24", 2**63 + 5, 16000, 1 << 20, (8, 2, 2, 2, 2),
                     [np.array([0, 100, 60000])] * 5, codec.environment(3))
    import io

    back = codec.Header.read(io.BytesIO(h.pack()), "x")
    assert back.pack() == h.pack() and back.env["threads"] == "3" and back.schedule == (8, 2, 2, 2, 2)


def _bad(tmp_path: Path, ckpt, uad: Path, data: bytes, match: str) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.uad"
    bad.write_bytes(data)
    with pytest.raises(UserError, match=match):
        codec.decompress_file(bad, tmp_path / "bad.wav", ckpt)


def test_corrupted_truncated_and_foreign_files_are_refused(tmp_path: Path, full_model: Path) -> None:
    ckpt = load(full_model)
    src, uad, _, _ = _roundtrip(tmp_path, ckpt, speechlike(2500), "PCM_16")
    data = uad.read_bytes()
    hlen = 9 + struct.unpack("<I", data[5:9])[0] + 4
    _bad(tmp_path, ckpt, uad, src.read_bytes(), "not an upscale-audio")
    _bad(tmp_path, ckpt, uad, data[:20], "truncated")
    _bad(tmp_path, ckpt, uad, data[:-9], "truncated")
    _bad(tmp_path, ckpt, uad, data + b"x", "1 unexpected byte")
    _bad(tmp_path, ckpt, uad, data + b"xy", "2 unexpected byte")
    flipped = bytearray(data)
    flipped[20] ^= 0x40
    _bad(tmp_path, ckpt, uad, bytes(flipped), "header is corrupted")
    flipped = bytearray(data)
    flipped[hlen + 13 + 8] ^= 0x10  # a payload word of the first block
    _bad(tmp_path, ckpt, uad, bytes(flipped), "CRC|corrupted")
    v2 = bytearray(data)
    v2[4] = 99
    _bad(tmp_path, ckpt, uad, bytes(v2), "version 99")
    other = load(save_tiny_model(tmp_path / "other.pt", known_bits=0))
    with pytest.raises(UserError, match="another model"):
        codec.decompress_file(uad, tmp_path / "o.wav", other)


def test_another_environment_is_refused_by_name(tmp_path: Path, full_model: Path) -> None:
    ckpt = load(full_model)
    _, uad, _, _ = _roundtrip(tmp_path, ckpt, speechlike(500), "PCM_16")
    data = uad.read_bytes()
    (n,) = struct.unpack("<I", data[5:9])
    body = data[9 : 9 + n].replace(b"torch=" + torch.__version__.encode(), b"torch=0.0.0" + b" " * 0)
    forged = data[:5] + struct.pack("<I", len(body)) + body + struct.pack("<I", zlib.crc32(body)) + data[9 + n + 4 :]
    _bad(tmp_path, ckpt, uad, forged, "another environment: torch 0.0.0")


def test_cli_round_trip_across_processes_and_refusals(tmp_path: Path, full_model: Path) -> None:
    """Encoder and decoder in separate processes give back the same PCM; a corrupted file exits 2
    with one line and leaves no output."""
    src = tmp_path / "a.wav"
    sf.write(src, speechlike(3000, channels=2).T, 8000, subtype="PCM_16")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": os.environ.get("TEST_THREADS", "2")}
    run = [sys.executable, "-m", "upscale_audio"]
    r = subprocess.run(run + ["compress", str(src), "--model", str(full_model), "--steps", "2", "--verify"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    uad = tmp_path / "a.uad"
    r = subprocess.run(run + ["decompress", str(uad), "--model", str(full_model), "-o", str(tmp_path / "b.wav")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert np.array_equal(sf.read(src, dtype="int16")[0], sf.read(tmp_path / "b.wav", dtype="int16")[0])
    r = subprocess.run(run + ["compress", str(src), "--model", str(full_model)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "exists" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "c.uad").write_bytes(uad.read_bytes()[:-40])
    r = subprocess.run(run + ["decompress", str(tmp_path / "c.uad"), "--model", str(full_model)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "c.wav").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("args,k", [([], 4), (["--preset", "fast"], 2), (["--preset", "best"], 64),
                                    (["--preset", "fast", "--steps", "3"], 3)])
def test_presets_choose_the_calls_per_stage(tmp_path: Path, full_model: Path, args: list[str], k: int) -> None:
    src = tmp_path / "a.wav"
    sf.write(src, speechlike(900).T, 16000, subtype="PCM_16")
    r = subprocess.run([sys.executable, "-m", "upscale_audio", "compress", str(src), "--model", str(full_model),
                        "-q", *args], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "a.uad", "rb") as f:
        h = codec.Header.read(f, "a.uad")
    assert all(len(p) == k for p in h.policy)
    assert codec.PRESETS == {"fast": 2, "default": 4, "best": 64}


def test_a_file_coded_under_onnx_runtime_decodes_bit_for_bit_and_says_so(tmp_path: Path, full_model: Path) -> None:
    """compress --engine onnx: the header records the engine, the decoder runs the same one (a file
    coded by PyTorch carries no engine key, as before), and without the model's .onnx the decoder
    refuses with the reason."""
    pytest.importorskip("onnx")
    from upscale_audio import engine

    ckpt = load(full_model)
    assert codec.resolve_engine(ckpt, "auto") == "torch"  # no .onnx yet
    with pytest.raises(UserError, match="export --onnx"):
        codec.resolve_engine(ckpt, "onnx")
    engine.export_onnx(ckpt.model, ckpt.sha256, ckpt.card(), engine.onnx_path(full_model))
    assert codec.resolve_engine(ckpt, "auto") == "onnx"
    x = speechlike(2300, channels=2)
    src, uad, out = tmp_path / "in.wav", tmp_path / "x.uad", tmp_path / "out.wav"
    sf.write(src, x.astype(np.int16).T, 16000, subtype="PCM_16")
    st = codec.compress_file(src, uad, ckpt, 3, block_frames=BLOCK, chunk=CHUNK, engine="onnx")
    assert 0.98 < st.payload_bits / st.model_bits < 1.02
    with open(uad, "rb") as f:
        assert codec.Header.read(f, "x").env["engine"].startswith("onnxruntime")
    codec.decompress_file(uad, out, ckpt)
    np.testing.assert_array_equal(sf.read(out, dtype="int16", always_2d=True)[0], x.astype(np.int16).T)
    torch_uad = tmp_path / "t.uad"
    codec.compress_file(src, torch_uad, ckpt, 3, block_frames=BLOCK, chunk=CHUNK)
    with open(torch_uad, "rb") as f:
        assert "engine" not in codec.Header.read(f, "t").env
    engine.onnx_path(full_model).unlink()
    with pytest.raises(UserError, match="coded under ONNX Runtime"):
        codec.decompress_file(uad, tmp_path / "again.wav", ckpt)
