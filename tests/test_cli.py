"""The command line as a user meets it: exit codes, one-line errors, files written or not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import save_tiny_model, speechlike
from upscale_audio import audio, bits, cli

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """Call the console-script entry point in-process; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["upscale-audio", *map(str, args)])
    code = 0
    try:
        cli.main()
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def u8_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    x = speechlike(8000, channels=2)
    p = tmp_path / "clip.wav"
    audio.write_u8(p, x, 16000)
    return p, x


@pytest.mark.parametrize("clip", ["speech_ru_16k", "organ_stereo_44k"])
def test_bin_centre_restores_with_the_hand_computed_snr(clip, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A real 16-bit recording (samples/), truncated to 8 bits as an unsigned 8-bit WAV."""
    orig = audio.read(ROOT / "samples" / f"{clip}.16bit-original.wav")
    assert orig.samples is not None and orig.significant_bits == 16
    x = orig.samples
    p = tmp_path / "clip.wav"
    audio.write_u8(p, x, orig.rate)
    code, _, err = run(["enhance", p, "--method", "bin-centre"], capsys, monkeypatch)
    assert code == 0, err
    out = audio.read(p.with_name("clip.16bit.wav"))
    assert out.subtype == "PCM_16" and out.channels == orig.channels and out.rate == orig.rate
    u = x.astype(np.int64) + 32768
    np.testing.assert_array_equal(out.u >> 8, u >> 8)
    hand = ((u >> 8) << 8) + 128 - 32768  # middle of each 256-wide bin
    snr = lambda ref, est: 10 * np.log10(np.sum(ref.astype(float) ** 2) / np.sum((ref - est).astype(float) ** 2))  # noqa: E731
    assert snr(x, out.samples) == pytest.approx(snr(x, hand), abs=1e-9)
    assert snr(x, out.samples) > snr(x, (((u >> 8) << 8) - 32768))  # beats zero-fill


def test_zero_method_and_outputs_for_directories(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    audio.write_u8(src / "a.wav", speechlike(500), 8000)
    audio.write_u8(src / "sub" / "b.wav", speechlike(700, channels=2), 44100)
    code, _, err = run(["enhance", src, "-o", tmp_path / "out", "--method", "zero", "-q"], capsys, monkeypatch)
    assert code == 0, err
    a, b = audio.read(tmp_path / "out" / "a.16bit.wav"), audio.read(tmp_path / "out" / "sub" / "b.16bit.wav")
    assert (a.rate, a.channels, b.rate, b.channels) == (8000, 1, 44100, 2)
    assert np.all((a.u & 255) == 0)


def test_ardm_enhance_and_bpd_and_info_with_a_model(u8_file, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    p, x = u8_file
    m = save_tiny_model(tmp_path / "m.pt")
    for mode in ("sample", "mean"):
        code, _, err = run(["enhance", p, "--model", m, "--mode", mode, "--steps", "3", "-o",
                            tmp_path / f"{mode}.flac"], capsys, monkeypatch)
        assert code == 0, err
        assert "1 stage(s)" in err and "real time" in err
        y = audio.read(tmp_path / f"{mode}.flac")
        np.testing.assert_array_equal(bits.keep_top_bits(y.u, 8), bits.keep_top_bits(x.astype(np.int64) + 32768, 8))
    wav16 = tmp_path / "x16.wav"
    sf.write(wav16, x.T, 16000, subtype="PCM_16")
    code, out, err = run(["bpd", wav16, "--model", m, "--json", "--passes", "2"], capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert {"bits_per_sample", "stderr", "samples", "files"} <= set(d) and d["samples"] == 16000
    code, out, _ = run(["bpd", wav16, "--model", m, "--steps", "4"], capsys, monkeypatch)
    assert code == 0 and "exact" in out
    code, out, _ = run(["info", "--model", m], capsys, monkeypatch)
    assert code == 0 and "receptive field" in out and "schedule" in out


def _bad_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    good = tmp_path / "good.wav"
    audio.write_u8(good, speechlike(400), 8000)
    full = tmp_path / "full.wav"
    sf.write(full, speechlike(400).T, 8000, subtype="PCM_16")
    (tmp_path / "text.wav").write_text("hello")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), np.int16), 8000, subtype="PCM_16")
    trunc = tmp_path / "trunc.wav"
    sf.write(trunc, speechlike(4000).T, 8000, subtype="PCM_U8")
    trunc.write_bytes(trunc.read_bytes()[:1000])
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "good.16bit.wav").write_bytes(b"precious")
    deep = tmp_path / "deep.wav"
    sf.write(deep, np.linspace(-0.5, 0.5, 300), 8000, subtype="PCM_24")
    return [
        (["enhance", tmp_path / "missing.wav", "--method", "zero"], "no such file"),
        (["enhance", tmp_path / "emptydir", "--method", "zero"], "no audio files"),
        (["enhance", tmp_path / "text.wav", "--method", "zero", "-o", tmp_path / "o1.wav"], "cannot read"),
        (["enhance", tmp_path / "empty.wav", "--method", "zero", "-o", tmp_path / "o2.wav"], "no samples"),
        (["enhance", trunc, "--method", "zero", "-o", tmp_path / "o3.wav"], "truncated"),
        (["enhance", good, "--method", "zero"], "exists; use --force"),
        (["enhance", full, "--method", "zero", "-o", tmp_path / "o4.wav"], "nothing to restore"),
        (["enhance", good, "--method", "zero", "-o", tmp_path / "nodir" / "x" / "o.mp3"], ".wav or .flac"),
        (["enhance", good, "--model", tmp_path / "nomodel.pt", "-o", tmp_path / "o5.wav"], "no such model"),
        (["enhance", good, "--steps", "zero", "-o", tmp_path / "o6.wav"], "--steps"),
        (["bpd", good, "--model", tmp_path / "nomodel.pt"], "no such model"),
        (["train", tmp_path / "emptydir", "--config", tmp_path / "none.toml", "--run-dir", tmp_path / "r"],
         "not found"),
        (["compress", deep, "-o", tmp_path / "o7.uad"], "deeper than 16 bits"),
        (["compress", tmp_path / "text.wav", "-o", tmp_path / "o8.uad"], "cannot read"),
        (["compress", good, "-o", tmp_path / "o9.wav"], "must end in .uad"),
        (["compress", good, "--steps", "0", "-o", tmp_path / "o10.uad"], "--steps 0"),
        (["decompress", full], "not an upscale-audio .uad file"),
        (["decompress", tmp_path / "emptydir"], "no .uad files"),
        (["decompress", tmp_path / "missing.uad"], "no such file"),
    ]


def test_every_bad_input_gives_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cases = _bad_cases(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for args, msg in cases:
        code, out, err = run(args, capsys, monkeypatch)
        assert code != 0, args
        lines = err.strip().splitlines()
        assert len(lines) == 1 and msg in lines[0] and "Traceback" not in err, (args, err)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written, nothing lost
    assert (tmp_path / "good.16bit.wav").read_bytes() == b"precious"


def test_sixteen_bit_input_with_bits_option_is_accepted(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    full = tmp_path / "full.wav"
    x = speechlike(400)
    sf.write(full, x.T, 8000, subtype="PCM_16")
    code, _, err = run(["enhance", full, "--method", "bin-centre", "--bits", "10", "-q"], capsys, monkeypatch)
    assert code == 0, err
    y = audio.read(tmp_path / "full.16bit.wav")
    np.testing.assert_array_equal(y.u >> 6, (x.astype(np.int64) + 32768) >> 6)


def test_console_script_process_exit_code_and_message(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "upscale_audio", "enhance", str(tmp_path / "nope.wav")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "nope.wav: no such file" in r.stderr


@pytest.mark.slow
def test_torchrun_enhance_shards_files_across_ranks(tmp_path: Path) -> None:
    import os

    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        audio.write_u8(src / f"f{i}.wav", speechlike(300, seed=i), 8000)
    m = save_tiny_model(tmp_path / "m.pt")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29571",
           "-m", "upscale_audio", "enhance", str(src), "-o", str(tmp_path / "out"), "--model", str(m),
           "--steps", "2", "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    outs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outs == [f"f{i}.16bit.wav" for i in range(4)]
    assert r.stderr.count(" -> ") == 4  # each file written once, by one rank


def test_chunk_seconds_does_not_change_the_output(u8_file, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Chunks are exact (halo windows) and draws are keyed by sample index: any chunk length gives
    the same bits, in sampling and in mean mode; the chunk length does reach the runner."""
    p, _ = u8_file
    m = save_tiny_model(tmp_path / "m.pt")
    for mode in ("sample", "mean"):
        outs = []
        for chunk in ("0.01", "0.13", "100"):
            dst = tmp_path / f"{mode}_{chunk}.wav"
            code, _, err = run(["enhance", p, "--model", m, "--mode", mode, "--steps", "3", "--chunk-seconds", chunk,
                                "-o", dst], capsys, monkeypatch)
            assert code == 0, err
            outs.append(audio.read(dst).u)
        for o in outs[1:]:
            np.testing.assert_array_equal(o, outs[0])
    from upscale_audio import runner

    seen = []
    real = runner.ChunkedRunner.__init__

    def spy(self, net, halo, chunk=16000, max_batch=1):  # type: ignore[no-untyped-def]
        seen.append(chunk)
        real(self, net, halo, chunk, max_batch)

    monkeypatch.setattr(runner.ChunkedRunner, "__init__", spy)
    code, _, err = run(["enhance", p, "--model", m, "--chunk-seconds", "0.25", "-o", tmp_path / "spy.wav"], capsys,
                       monkeypatch)
    assert code == 0, err
    assert seen == [4000]  # 0.25 s at 16 kHz


def test_export_then_load_restores_the_same_bits(u8_file, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import torch

    p, _ = u8_file
    m = save_tiny_model(tmp_path / "m.pt")
    raw = torch.load(m, weights_only=True)
    raw["training"] = {"step": 3, "optimizer": {"state": {}}}
    torch.save(raw, m)
    code, _, err = run(["export", m, tmp_path / "e.pt"], capsys, monkeypatch)
    assert code == 0, err
    outs = []
    for model in (m, tmp_path / "e.pt"):
        dst = tmp_path / f"{model.stem}.wav"
        code, _, err = run(["enhance", p, "--model", model, "--mode", "sample", "--steps", "2", "-o", dst], capsys,
                           monkeypatch)
        assert code == 0, err
        outs.append(audio.read(dst).u)
    np.testing.assert_array_equal(outs[0], outs[1])
    assert "training" not in torch.load(tmp_path / "e.pt", weights_only=True)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
@pytest.mark.parametrize("clip", ["speech_en_8k", "speech_ru_16k"])
def test_the_bundled_g711_restore_beats_the_decoded_value(clip: str, law: str) -> None:
    """Guard on what ships for G.711: on a real clip (samples/, 1.5 s) the interval model's posterior
    mean and the classical estimate that ``enhance`` and ``restore`` write for a G.711 mean both beat
    G.711's own decoded value in SNR, and every output sample re-encodes to its input's code
    (docs/RESULTS.md §19, §20)."""
    from upscale_audio import api, checkpoint, classical, correction, intervals, metrics
    from upscale_audio.enhance import enhance_intervals

    orig = audio.read(ROOT / "samples" / f"{clip}.16bit-original.wav")
    assert orig.samples is not None
    u = orig.u[:, : int(1.5 * orig.rate)]
    codes = intervals.g711_encode(u, law)
    lo, hi = intervals.g711(codes, law)
    ckpt = checkpoint.load(checkpoint.model_for(None, lo, hi, law))
    net = enhance_intervals(lo, hi, ckpt, mode="mean", rate=orig.rate).u
    lmmse = classical.interval_mean(lo, hi, orig.rate)
    shipped = classical.interval_mean(lo, hi, orig.rate, corr=correction.for_rate(orig.rate))  # enhance's output
    # restore() of decoded samples: a decoded 0 names mu-law's negative zero, so compare on its bins
    decoded = (intervals.decoded(law)[codes] - 32768).astype(np.int16)
    api_bins = intervals.g711(intervals.decoded_to_codes(decoded.astype(np.int64) + 32768, law), law)
    want = classical.interval_mean(*api_bins, orig.rate, corr=correction.for_rate(orig.rate))
    np.testing.assert_array_equal(api.restore(decoded, law=law, rate=orig.rate), want - 32768)
    ref = u - 32768
    decoded_db = metrics.snr_db(ref, intervals.decoded(law)[codes] - 32768)
    for got in (net, lmmse, shipped):
        np.testing.assert_array_equal(intervals.g711_encode(got, law), codes)
        assert metrics.snr_db(ref, got - 32768) - decoded_db > 0.0
    if correction.for_rate(orig.rate) is not None:
        # the shipped correction, its features and the numpy net together: measured +0.65 / +0.62 dB
        # (8 kHz, mu-law / A-law) and +0.55 / +0.51 (16 kHz) over the classical estimate on these clips
        assert metrics.snr_db(ref, shipped - 32768) - metrics.snr_db(ref, lmmse - 32768) > 0.3


@pytest.mark.parametrize("bundled", ["default.pt", "lowbyte.pt", "intervals.pt", "lowbyte_mean.pt"])
@pytest.mark.parametrize("clip", ["speech_en_8k", "speech_ru_16k"])
def test_the_bundled_model_loads_and_beats_bin_centre(clip: str, bundled: str) -> None:
    """Guard on what ships: each bundled model restores a real clip (samples/, 1.5 s) better than
    the bin centre does, in SNR, and keeps every known bit; 8-bit PCM goes to the low-byte one."""
    from upscale_audio import checkpoint, intervals, metrics
    from upscale_audio.enhance import enhance_array

    path = checkpoint.MODELS_DIR / bundled
    assert path.is_file(), f"{path} is not installed (package data)"
    ckpt = checkpoint.load(path)
    if bundled == "lowbyte.pt":
        assert ckpt.known_bits == 8
        u_any = np.zeros((1, 4), dtype=np.int64) + 32768
        assert checkpoint.model_for(None, *intervals.linear(u_any, 8)) == str(path)
    orig = audio.read(ROOT / "samples" / f"{clip}.16bit-original.wav")
    assert orig.samples is not None
    u = orig.u[:, : int(1.5 * orig.rate)]
    ref = u - 32768
    got = enhance_array(u, 8, ckpt, mode="mean", rate=orig.rate).u
    np.testing.assert_array_equal(got >> 8, u >> 8)
    centre = ((u >> 8) << 8) + 128
    gain = metrics.snr_db(ref, got - 32768) - metrics.snr_db(ref, centre - 32768)
    assert gain > 0.5, gain


def test_enhance_takes_the_bundled_model_that_fits_the_input(tmp_path, capsys, monkeypatch, request) -> None:  # type: ignore[no-untyped-def]
    """With a low-byte specialist bundled, 8-bit PCM goes to it and 4-bit PCM (high bits open) to the
    all-16-bit model; --model overrides; without the specialist everything goes to the default."""
    from upscale_audio import checkpoint, intervals

    checkpoint.load_cached.cache_clear()
    request.addfinalizer(checkpoint.load_cached.cache_clear)  # the tiny stand-ins must not outlive the test
    full = save_tiny_model(tmp_path / "default.pt", known_bits=0)
    low = save_tiny_model(tmp_path / "lowbyte.pt", known_bits=8)
    fast = save_tiny_model(tmp_path / "lowbyte_mean.pt", known_bits=8)
    monkeypatch.setattr(checkpoint, "BUNDLED", full)
    monkeypatch.setattr(checkpoint, "BUNDLED_LOW_BYTE", low)
    monkeypatch.setattr(checkpoint, "BUNDLED_LOW_BYTE_MEAN", fast)
    monkeypatch.setattr(checkpoint, "BUNDLED_INTERVALS", tmp_path / "absent.pt")
    x = speechlike(3000)
    u = x.astype(np.int64) + 32768
    assert checkpoint.model_for(None, *intervals.linear(u, 8), mode="mean") == str(fast)  # the posterior mean
    assert checkpoint.model_for(None, *intervals.linear(u, 4), mode="mean") is None
    monkeypatch.setattr(checkpoint, "BUNDLED_LOW_BYTE_MEAN", tmp_path / "absent.pt")
    assert checkpoint.model_for(None, *intervals.linear(u, 8)) == str(low)
    assert checkpoint.model_for(None, *intervals.linear(u, 12)) == str(low)
    assert checkpoint.model_for(None, *intervals.linear(u, 7)) is None
    assert checkpoint.model_for(full, *intervals.linear(u, 8)) == str(full)
    eight, four = tmp_path / "eight.wav", tmp_path / "four.wav"
    audio.write_u8(eight, x, 16000)
    sf.write(four, ((u >> 12 << 12) - 32768).astype(np.int16).T, 16000, subtype="PCM_16")
    for src, name in ((eight, "lowbyte.pt"), (four, "default.pt")):
        code, _, err = run(["enhance", src, "--mode", "mean", "--bits", "8" if src == eight else "4"],
                           capsys, monkeypatch)
        assert code == 0 and f"model {name} (" in err, err
    code, _, err = run(["enhance", eight, "--mode", "mean", "--model", full, "-f"], capsys, monkeypatch)
    assert code == 0 and "model default.pt (" in err, err
    monkeypatch.setattr(checkpoint, "BUNDLED_LOW_BYTE", tmp_path / "absent.pt")
    assert checkpoint.model_for(None, *intervals.linear(u, 8)) is None
    code, out, _ = run(["info"], capsys, monkeypatch)
    assert code == 0 and "bundled models:   default.pt" in out and "lowbyte" not in out


def test_intervals_take_the_bundled_interval_model_when_there_is_one(tmp_path, capsys, monkeypatch, request) -> None:  # type: ignore[no-untyped-def]
    """mu-law and A-law files (``law=`` in Python too, even quiet ones whose high byte is known) and
    linear depths under 8 go to a bundled interval model, 8..15 bits to the low-byte one; without
    an interval model they go where they went before; --model overrides; ``bpd --given ulaw``
    scores with it."""
    from upscale_audio import api, checkpoint, intervals

    checkpoint.load_cached.cache_clear()
    request.addfinalizer(checkpoint.load_cached.cache_clear)
    full = save_tiny_model(tmp_path / "default.pt", known_bits=0)
    g711 = save_tiny_model(tmp_path / "intervals.pt", known_bits=0, interval_features=True)
    low = save_tiny_model(tmp_path / "lowbyte.pt", known_bits=8)
    monkeypatch.setattr(checkpoint, "BUNDLED", full)
    monkeypatch.setattr(checkpoint, "BUNDLED_LOW_BYTE", low)
    monkeypatch.setattr(checkpoint, "BUNDLED_LOW_BYTE_MEAN", tmp_path / "absent.pt")
    monkeypatch.setattr(checkpoint, "BUNDLED_INTERVALS", g711)
    x = speechlike(3000)
    u = x.astype(np.int64) + 32768
    g = intervals.g711(intervals.g711_encode(u, "ulaw"), "ulaw")
    assert checkpoint.model_for(None, *g, "ulaw") == str(g711)
    quiet = intervals.g711(intervals.g711_encode(np.full(10, 32770), "ulaw"), "ulaw")  # one high byte
    assert checkpoint.within_one_high_byte(*quiet) and checkpoint.model_for(None, *quiet, "ulaw") == str(g711)
    assert checkpoint.model_for(None, *intervals.linear(u, 4)) == str(g711)
    assert checkpoint.model_for(None, *intervals.linear(u, 8)) == str(low)
    assert checkpoint.model_for(full, *g, "alaw") == str(full)
    src = tmp_path / "call.wav"
    sf.write(src, x.T, 8000, subtype="ULAW")
    code, _, err = run(["enhance", src, "--mode", "sample", "--steps", "2"], capsys, monkeypatch)
    assert code == 0 and "model intervals.pt (" in err, err
    code, _, err = run(["enhance", src, "--mode", "mean", "-f"], capsys, monkeypatch)  # a G.711 mean: classical
    assert code == 0 and "; lmmse" in err and "intervals.pt" not in err, err
    code, out, _ = run(["info"], capsys, monkeypatch)
    assert code == 0 and "intervals.pt (known intervals" in out
    wav16 = tmp_path / "x16.wav"
    sf.write(wav16, x.T, 8000, subtype="PCM_16")
    for args, name in ((["--given", "ulaw"], "intervals.pt"), (["--given-bits", "8"], "default.pt"),
                       (["--given", "alaw", "--model", str(full)], "default.pt")):
        code, out, err = run(["bpd", wav16, "--json", "--passes", "1", *args], capsys, monkeypatch)
        assert code == 0 and json.loads(out)["model"].endswith(name), (args, out, err)
    decoded = (intervals.decoded("alaw")[intervals.g711_encode(u, "alaw")] - 32768).astype(np.int16)
    y = api.restore(decoded, law="alaw", rate=8000, mode="sample", steps=2)
    assert y.shape == x.shape
    monkeypatch.setattr(checkpoint, "BUNDLED_INTERVALS", tmp_path / "absent.pt")
    code, _, err = run(["enhance", src, "--mode", "sample", "--steps", "2", "-f"], capsys, monkeypatch)
    assert code == 0 and "model default.pt (" in err, err
    assert checkpoint.model_for(None, *quiet, "ulaw") == str(low)  # as before: the high byte is known
