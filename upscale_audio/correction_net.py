"""The torch twin of ``correction.forward_np``: the correction net as trained (``scripts/train_correction.py``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .correction import N_FEATURES, Arch


class CorrectionNet(nn.Module):
    """Gated dilated convolutions with residuals: features [B, 8, T] -> shift in bin widths [B, T] in (-1/2, 1/2)."""

    def __init__(self, arch: Arch = Arch()) -> None:
        super().__init__()
        C = arch.channels
        self.arch = arch
        self.inp = nn.Conv1d(N_FEATURES, C, 1)
        self.convs = nn.ModuleList([nn.Conv1d(C, 2 * C, 3, padding=d, dilation=d) for d in arch.dilations])
        self.res = nn.ModuleList([nn.Conv1d(C, C, 1) for _ in arch.dilations])
        self.out = nn.Conv1d(C, 1, 1)
        nn.init.zeros_(self.out.weight)  # starts as the classical estimate
        nn.init.zeros_(self.out.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for conv, res in zip(self.convs, self.res):
            a, b = conv(h).chunk(2, dim=1)
            h = h + res(torch.tanh(a) * torch.sigmoid(b))
        return 0.5 * torch.tanh(self.out(h))[:, 0]

    def _named(self) -> dict[str, torch.Tensor]:
        """The weights under ``correction.forward_np``'s names (1x1 convolutions keep their kernel axis)."""
        out = {"inp_w": self.inp.weight, "inp_b": self.inp.bias, "out_w": self.out.weight, "out_b": self.out.bias}
        for i, (conv, res) in enumerate(zip(self.convs, self.res)):
            assert isinstance(conv, nn.Conv1d) and isinstance(res, nn.Conv1d)
            out.update({f"conv{i}_w": conv.weight, f"conv{i}_b": conv.bias,
                        f"res{i}_w": res.weight, f"res{i}_b": res.bias})
        return {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}

    def params_np(self) -> dict[str, np.ndarray]:
        """The weights as ``correction.forward_np`` reads them (float32; 1x1 kernels as matrices)."""
        return {k: (v[:, :, 0] if k.endswith("_w") and v.shape[2] == 1 else v).detach().cpu().numpy().astype(np.float32)
                for k, v in self._named().items()}

    def load_params_np(self, params: dict[str, np.ndarray]) -> None:
        """Set the weights from ``params_np``'s layout (to continue training from saved weights)."""
        with torch.no_grad():
            for k, v in self._named().items():
                v.copy_(torch.from_numpy(np.asarray(params[k], dtype=np.float32)).reshape(v.shape))
