"""Running observation normaliser that lives inside the policy module (and so inside the exported graph)."""

from __future__ import annotations

import torch
from torch import nn


class RunningNormalizer(nn.Module):
    """Normalises observations by a running mean and variance: (x - mean) / sqrt(var + eps), clipped.

    The statistics are buffers, so they are saved and restored with the policy's ``state_dict`` and
    exported into the ONNX graph. They change only through ``update``; the trainer calls it once per
    rollout, after the update, so the rollout's log-probabilities and the update see the same statistics.
    """

    def __init__(self, dim: int, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.clip = clip
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge a batch x: (B, dim) into the statistics (Chan et al. parallel variance)."""
        x = x.reshape(-1, self.mean.shape[0]).to(torch.float64)
        batch_count = x.shape[0]
        if batch_count == 0:
            return
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        total = self.count + batch_count
        delta = batch_mean - self.mean.to(torch.float64)
        new_mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta.pow(2) * self.count * batch_count / total
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    @torch.no_grad()
    def unclipped_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw inputs the normaliser passes unclipped: mean -+ clip * sqrt(var + eps), (dim,) float64 each.

        Beyond it ``forward`` saturates at +-clip, so the policy cannot tell a value there from the boundary.
        """
        half_width = self.clip * torch.sqrt(self.var.to(torch.float64) + self.eps)
        mean = self.mean.to(torch.float64)
        return mean - half_width, mean + half_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., dim) raw -> (..., dim) normalised and clipped."""
        return torch.clamp((x - self.mean) / torch.sqrt(self.var + self.eps), -self.clip, self.clip)
