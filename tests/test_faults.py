"""Every fault and bad input ends in one line, a non-zero exit, and nothing partial left behind."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch

from tests.conftest import save_tiny_model, speechlike
from tests.test_cli import run
from upscale_audio import audio


def _u8(path: Path, T: int = 4000) -> Path:
    audio.write_u8(path, speechlike(T), 16000)
    return path


def _one_error_line(err: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "0"])
def test_bad_chunk_seconds_is_one_line(tmp_path: Path, capsys, monkeypatch, value: str) -> None:  # type: ignore[no-untyped-def]
    src = _u8(tmp_path / "a.wav")
    code, _, err = run(["enhance", src, "--chunk-seconds", value, "--method", "bin-centre"], capsys, monkeypatch)
    assert code == 2 and "--chunk-seconds" in err
    _one_error_line(err)
    assert not (tmp_path / "a.16bit.wav").exists()


def test_bits_16_says_what_is_wrong(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(["enhance", _u8(tmp_path / "a.wav"), "--bits", "16"], capsys, monkeypatch)
    assert code == 2 and "16 leaves nothing to restore" in err


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    src = _u8(tmp_path / "a.wav")

    def full(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sf, "write", full)
    code, _, err = run(["enhance", src, "--method", "bin-centre"], capsys, monkeypatch)
    assert code == 2 and "No space left on device" in err
    _one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_new_folder_under_a_read_only_one_is_refused_before_work(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    src = _u8(tmp_path / "a.wav")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    code, _, err = run(["enhance", src, "-o", ro / "new" / "x.wav", "--method", "bin-centre"], capsys, monkeypatch)
    assert code == 2 and "not writable" in err


def test_a_non_utf8_file_name_reads_and_writes(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    name = os.fsdecode(b"caf\xe9.wav")
    src = _u8(tmp_path / name)
    code, _, err = run(["enhance", src, "--method", "bin-centre"], capsys, monkeypatch)
    assert code == 0, err
    assert (tmp_path / os.fsdecode(b"caf\xe9.16bit.wav")).is_file()


def test_a_folder_with_a_bad_file_does_the_rest_and_a_rerun_skips_what_is_done(tmp_path: Path, capsys,
                                                                             monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fold = tmp_path / "in"
    fold.mkdir()
    _u8(fold / "a.wav")
    (fold / "b.wav").write_bytes(b"not audio")
    _u8(fold / "c.wav")
    out = tmp_path / "out"
    code, _, err = run(["enhance", fold, "-o", out, "--method", "bin-centre"], capsys, monkeypatch)
    assert code == 2 and "1 of 3 file(s) failed" in err and "b.wav" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.16bit.wav", "c.16bit.wav"]
    (fold / "b.wav").unlink()
    code, _, err = run(["enhance", fold, "-o", out, "--method", "bin-centre"], capsys, monkeypatch)
    assert code == 0 and "skipping 2 of 2" in err


@pytest.mark.parametrize("damage", ["no_config", "bad_tracker", "weights"])
def test_a_damaged_checkpoint_is_one_line(tmp_path: Path, capsys, monkeypatch, damage: str) -> None:  # type: ignore[no-untyped-def]
    ckpt = torch.load(save_tiny_model(tmp_path / "m.pt", (8, 8), 8), weights_only=True)
    if damage == "no_config":
        del ckpt["config"]
    elif damage == "bad_tracker":
        ckpt["tracker"] = {"values": torch.zeros(3)}
    else:
        next(iter(ckpt["model"].values())).add_(1.0)
    torch.save(ckpt, tmp_path / "bad.pt")
    code, _, err = run(["enhance", _u8(tmp_path / "a.wav"), "--model", tmp_path / "bad.pt"], capsys, monkeypatch)
    assert code == 2 and "damaged" in err
    _one_error_line(err)


@pytest.mark.parametrize("setting", ["model.channels=-4", "train.lr=-1", "model.blocks=0", "train.ema=1.5"])
def test_bad_training_settings_are_refused_before_anything_is_written(tmp_path: Path, capsys, monkeypatch,
                                                                    setting: str) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "a.wav"
    sf.write(src, speechlike(4000).T, 16000, subtype="PCM_16")
    code, _, err = run(["train", src, "--config", Path(__file__).parents[1] / "configs" / "tiny.toml", "--run-dir",
                        tmp_path / "run", "--set", setting], capsys, monkeypatch)
    assert code == 2 and setting.split("=")[0] in err
    assert not (tmp_path / "run").exists()


def test_run_dir_that_is_a_file_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "f").write_text("x")
    code, _, err = run(["train", _u8(tmp_path / "a.wav"), "--config", Path(__file__).parents[1] / "configs" /
                        "tiny.toml", "--run-dir", tmp_path / "f"], capsys, monkeypatch)
    assert code == 2 and "is a file" in err


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_signal_during_compress_leaves_no_temp_file(tmp_path: Path, sig: int, code: int) -> None:
    src = tmp_path / "a.wav"
    sf.write(src, speechlike(48000).T, 16000, subtype="PCM_16")
    model = save_tiny_model(tmp_path / "m.pt", (8, 8), 0)
    proc = subprocess.Popen([sys.executable, "-m", "upscale_audio", "compress", str(src), "--model", str(model),
                             "--steps", "64"], stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 60
    while not any(p.name.endswith(".part") for p in tmp_path.iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into the coding
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "interrupted" in err and "no partial output" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "m.pt"]
