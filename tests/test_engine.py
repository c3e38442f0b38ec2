"""The ONNX Runtime network (engine.py): the logits PyTorch computes, used only beside its own
checkpoint, and a restore that never imports torch."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import save_tiny_model, speechlike
from tests.test_cli import run
from upscale_audio import audio, checkpoint, engine, intervals, walk
from upscale_audio.enhance import enhance_intervals
from upscale_audio.errors import UserError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def _export(pt: Path) -> None:
    ck = checkpoint.load(pt)
    engine.export_onnx(ck.model, ck.sha256, ck.card(), engine.onnx_path(pt))


def _call_inputs(ck: checkpoint.LoadedModel, B: int, T: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A call's inputs: random values and reveal masks, the model's stages, and known intervals of
    every kind (a linear depth, G.711 mu-law, nothing) in rows 0, 1, 2, ..."""
    rng = np.random.default_rng(seed)
    u = (np.clip(np.cumsum(rng.integers(-900, 900, (B, T)), 1), -30000, 30000) + 32768).astype(np.int64)
    stage = np.full(B, ck.stages[seed % len(ck.stages)], dtype=np.int64)  # one stage per call, as the walk calls
    revealed = rng.random((B, T)) < 0.4
    lo, hi = np.zeros_like(u), np.full_like(u, 1 << 16)
    for r in range(B):
        kind = r % 3
        if kind == 0:
            lo[r], hi[r] = intervals.linear(u[r], max(ck.known_bits, 6))
        elif kind == 1 and ck.known_bits == 0:
            lo[r], hi[r] = intervals.g711_of_u(u[r], "ulaw")
    value, _ = ck.maps.reveal(u, revealed, stage)
    return value, revealed, stage, rng.random(B).astype(np.float32), lo, hi


def _torch_probs(model: object, ck: checkpoint.LoadedModel, x: tuple[np.ndarray, ...]) -> np.ndarray:
    """What the ONNX graph computes, from PyTorch's logits, in numpy float64: the softmax over each
    position's allowed digits (given by the digits above the stage, which value holds, and the
    known interval), each edge digit weighted by the share of it the interval allows."""
    logits = engine.TorchNet(model)(*x)  # type: ignore[arg-type]
    value, _, stage, _, lo, hi = x
    allowed = ck.maps.allowed(value, lo, hi, stage)
    return np.exp(np.concatenate([walk.masked_log_softmax(lg, a, b, np.float64, c, d)[None]
                                  for lg, a, b, c, d in zip(logits, *allowed)]))


def test_the_onnx_network_computes_what_the_torch_model_does(tmp_path: Path) -> None:
    """Any batch, length, stage, reveal mask and interval (all dynamic in the export), to float32
    rounding; a model with the interval features too."""
    for name, extra in (("m", {}), ("iv", {"interval_features": True})):
        pt = save_tiny_model(tmp_path / f"{name}.pt", known_bits=0, **extra)
        _export(pt)
        ck = checkpoint.load(pt, "onnx")
        assert ck.onnx is not None and ck.net("cpu")[1] == "onnx"
        model = checkpoint.load(pt, "torch").model
        for B, T, seed in ((1, 100, 0), (3, 2500, 1), (2, 333, 2)):  # both stages
            x = _call_inputs(ck, B, T, seed)
            want, got = _torch_probs(model, ck, x), ck.onnx(*x)
            assert got.shape == want.shape and got.dtype == np.float32
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
            assert np.all(got[want == 0] == 0)  # nothing outside the allowed digits
            torch_probs = engine.TorchNet(model, gives="probs")(*x)  # the same call under PyTorch
            np.testing.assert_allclose(torch_probs, want, rtol=0, atol=1e-5)
            assert np.all(torch_probs[want == 0] == 0)
            # every digit allowed everywhere (the graph's unmasked branch, masked_probs' If node)
            full = (*x[:4], np.zeros_like(x[0]), np.full_like(x[0], 1 << 16))
            dlo, dhi = ck.maps.allowed_digits(x[0], full[4], full[5], x[2])
            assert np.all(dlo == 0) and np.all(dhi == 2 ** ck.maps.schedule[int(x[2][0])])
            np.testing.assert_allclose(ck.onnx(*full), _torch_probs(model, ck, full), rtol=0, atol=1e-5)
        np.testing.assert_array_equal(ck.onnx(*_call_inputs(ck, 2, 300)[:4]),  # no interval = the whole range
                                      ck.onnx(*_call_inputs(ck, 2, 300)[:4], *(np.zeros((2, 300), np.int64),
                                                                               np.full((2, 300), 1 << 16))))


def test_a_model_loaded_from_its_card_is_the_checkpoints_model(tmp_path: Path) -> None:
    pt = save_tiny_model(tmp_path / "m.pt", known_bits=0)
    _export(pt)
    card, full = checkpoint.load(pt, "onnx"), checkpoint.load(pt, "torch")
    assert card._model is None and full.onnx is None  # the card reads no weights; torch builds no session
    assert card.card() == full.card() and card.sha256 == full.sha256 and card.halo == full.halo
    assert card.policies(4) .keys() == full.policies(4).keys()
    for s, p in full.policies(3).items():  # a budget not stored: the DP on the tracker, read on demand
        np.testing.assert_array_equal(card.policies(3)[s], p)
    sd = card.model.state_dict()  # the weights, read on demand
    assert all(np.array_equal(sd[k].numpy(), v.numpy()) for k, v in full.model.state_dict().items())


def test_an_onnx_network_is_used_only_beside_its_own_checkpoint(tmp_path: Path) -> None:
    pt = save_tiny_model(tmp_path / "m.pt", known_bits=0)
    assert checkpoint.load(pt, "auto").onnx is None  # no .onnx: PyTorch
    with pytest.raises(UserError, match="export --onnx"):
        checkpoint.load(pt, "onnx")
    _export(pt)
    assert checkpoint.load(pt, "auto").onnx is not None
    assert checkpoint.load(pt, "torch").onnx is None
    # the checkpoint changed after the export: auto falls back to PyTorch, onnx refuses
    other = save_tiny_model(tmp_path / "other.pt", known_bits=0)
    pt.write_bytes(other.read_bytes())
    assert checkpoint.load(pt, "auto").onnx is None
    with pytest.raises(UserError, match="another checkpoint"):
        checkpoint.load(pt, "onnx")
    # a file of an older version (no card) and a file that is not ONNX
    import onnx

    _export(pt)
    proto = onnx.load(str(engine.onnx_path(pt)))
    sha = hashlib.sha256(pt.read_bytes()).hexdigest()
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {engine.SHA_KEY: sha})
    onnx.save(proto, str(engine.onnx_path(pt)))
    assert checkpoint.load(pt, "auto").onnx is None
    with pytest.raises(UserError, match="older upscale-audio"):
        checkpoint.load(pt, "onnx")
    engine.onnx_path(pt).write_bytes(b"not onnx")
    assert checkpoint.load(pt, "auto").onnx is None
    with pytest.raises(UserError, match="not a readable ONNX model"):
        checkpoint.load(pt, "onnx")


@pytest.mark.parametrize("name", ["default", "lowbyte", "intervals", "lowbyte_mean"])
def test_the_bundled_onnx_networks_belong_to_the_bundled_models(name: str) -> None:
    """A stale shipped .onnx would silently fall back to PyTorch (slow): each must carry its
    checkpoint's sha256 and card and compute its logits."""
    pt = checkpoint.MODELS_DIR / f"{name}.pt"
    ck, full = checkpoint.load(pt, "onnx"), checkpoint.load(pt, "torch")
    assert ck.onnx is not None and ck.card() == full.card()
    for seed in (0, 1):  # each stage of the all-16-bit model
        x = _call_inputs(ck, 3, 3000, seed)
        np.testing.assert_allclose(ck.onnx(*x), _torch_probs(full.model, ck, x), rtol=0, atol=1e-5)


def test_a_restore_under_onnx_keeps_every_known_bit_and_nearly_every_sample(tmp_path: Path) -> None:
    pt = save_tiny_model(tmp_path / "m.pt", known_bits=0)
    _export(pt)
    u = speechlike(4000).astype(np.int64) + 32768
    lo, hi = intervals.linear(u, 8)
    a = enhance_intervals(lo, hi, checkpoint.load(pt, "torch"), mode="mean")
    b = enhance_intervals(lo, hi, checkpoint.load(pt, "onnx"), mode="mean")
    assert (a.engine, b.engine) == ("torch", "onnx")
    assert intervals.check_inside(b.u, lo, hi)
    assert np.mean(a.u != b.u) < 0.01 and np.abs(a.u - b.u).max() <= 2
    g = intervals.g711(intervals.g711_encode(u, "alaw"), "alaw")  # draws from the graph's probabilities
    s = enhance_intervals(*g, checkpoint.load(pt, "onnx"), mode="sample", steps=3)
    assert s.engine == "onnx" and intervals.check_inside(s.u, *g)


@pytest.mark.parametrize("command", ["enhance", "info"])
def test_enhance_and_info_under_onnx_never_import_torch(tmp_path: Path, command: str) -> None:
    """The point of the ONNX path: start-up without torch's 1.7 s import (the bundled models)."""
    src = tmp_path / "in.wav"
    audio.write_u8(src, speechlike(3000), 16000)
    args = "['upscale-audio', 'enhance', sys.argv[1], '-q']" if command == "enhance" else "['upscale-audio', 'info']"
    code = (f"import sys\nfrom upscale_audio.cli import main\nsys.argv = {args}\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(src)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
    if command == "enhance":
        assert sf.info(tmp_path / "in.16bit.wav").subtype == "PCM_16"


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
    code, _, err = run(["enhance", src, "--model", pt, "--engine", "torch", "-o", tmp_path / "t.wav"], capsys,
                       monkeypatch)
    assert code == 0 and "(torch)" in err, err


def test_a_restore_under_onnx_does_not_depend_on_the_chunk(tmp_path: Path) -> None:
    """Windows of any length give the same samples (the halo makes chunking exact; ORT's kernels do
    not change a sample's arithmetic with the window's length): what lets the CPU default chunk
    differ between the engines."""
    pt = save_tiny_model(tmp_path / "m.pt", known_bits=0)
    _export(pt)
    ck = checkpoint.load(pt, "onnx")
    u = speechlike(3000, channels=2).astype(np.int64) + 32768
    lo, hi = intervals.linear(u, 6)
    for mode in ("mean", "sample"):
        outs = [enhance_intervals(lo, hi, ck, mode=mode, steps=3, chunk=c).u for c in (70, 555, 48000)]
        assert all(np.array_equal(o, outs[0]) for o in outs[1:]), mode


def test_a_restore_with_two_onnx_lanes_is_the_one_lane_restore(tmp_path: Path) -> None:
    """Two sessions running windows side by side (``restore_lanes``) give the same samples as one
    session of two threads, in sampling (where the order of draws matters) and in the mean."""
    pt = save_tiny_model(tmp_path / "m.pt", known_bits=0)
    _export(pt)
    ck = checkpoint.load(pt, "onnx")
    u = speechlike(3000, channels=2).astype(np.int64) + 32768
    lo, hi = intervals.linear(u, 6)
    for mode in ("mean", "sample"):
        outs = []
        for lanes, threads in ((1, 2), (2, 1)):
            ck.onnx = engine.OnnxNet(engine.onnx_path(pt), threads, lanes)
            outs.append(enhance_intervals(lo, hi, ck, mode=mode, steps=3, chunk=400).u)
        assert np.array_equal(outs[0], outs[1]), mode


def test_device_auto_reads_whether_torch_is_a_cuda_build_without_importing_it(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """torch/version.py says ``cuda: Optional[str] = None`` in a CPU build, a version string in a
    CUDA build; only a CUDA build is imported to ask for a GPU."""
    import importlib.util

    pkg = tmp_path / "torch"
    pkg.mkdir()
    spec = importlib.util.spec_from_file_location("torch", pkg / "__init__.py", submodule_search_locations=[str(pkg)])
    monkeypatch.setattr(engine, "find_spec", lambda name: spec)
    for line, want in (("cuda: Optional[str] = None", False), ("cuda: Optional[str] = '12.4'", True),
                       ("cuda = None", False), ("hip = None", True)):  # no cuda line: cannot tell, ask torch
        (pkg / "version.py").write_text(f"__version__ = '2.13.0'\n{line}\n")
        assert engine._torch_built_with_cuda() is want, line
    assert engine.pick_device("cpu") == "cpu"
    (pkg / "version.py").write_text("cuda: Optional[str] = None\n")
    assert engine.pick_device("auto") == "cpu"


def test_restore_lanes_split_the_cpus_unless_threads_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two lanes of half the usable CPUs; one lane of OMP_NUM_THREADS when set; one lane on one CPU."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for cpus, want in ((1, (1, 0)), (2, (2, 1)), (8, (2, 4))):
        monkeypatch.setattr(engine.os, "sched_getaffinity", lambda _pid, n=cpus: set(range(n)))
        assert engine.restore_lanes() == want
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert engine.restore_lanes() == (1, 3)
