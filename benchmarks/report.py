"""Shared output of the benchmarks: a markdown table on stdout and a JSON file with the context."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


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
