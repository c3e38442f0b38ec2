"""What every benchmark shares: the held-out file picker, the SNR measure, a markdown table on stdout
and a JSON file with the context."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from upscale_audio import audio, metrics


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name()
    return f"{platform.machine()} x{torch.get_num_threads()} threads"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for r in rows:
        print("| " + " | ".join(r) + " |")


def write_json(path: Path, device: torch.device, rows: list[dict[str, Any]], **context: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"device": str(device), "device_name": device_name(device),
                                "torch": torch.__version__, **context, "rows": rows}, indent=1))


SETS = ("speech_16k", "speech_8k", "music_44k", "music_16k")


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    """SNR of offset-binary arrays (the same measure as `upscale-audio compare`)."""
    return metrics.snr_db(ref.astype(np.int64) - 32768, est.astype(np.int64) - 32768)


def pick_files(folder: Path, seconds: float = 0.0, count: int = 0) -> list[audio.AudioFile]:
    """The one held-out file picker: files in a fixed random order (seed 0) until ``seconds`` of
    audio or ``count`` files (0: no limit), skipping files deeper than 16 bits."""
    files = [f for f, _ in audio.find_audio([folder])]
    rng = np.random.default_rng(0)
    out: list[audio.AudioFile] = []
    total = 0.0
    for i in rng.permutation(len(files)):
        a = audio.read(files[i])
        if a.samples is None:
            continue
        out.append(a)
        total += a.frames / a.rate
        if (0 < seconds <= total) or (0 < count <= len(out)):
            break
    return out
