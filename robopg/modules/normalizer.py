"""Running observation normaliser that lives inside the policy module (and so inside the exported graph)."""

from __future__ import annotations

from functools import reduce
from typing import Any

import torch
from torch import nn

from robopg import distributed


def merge_moments(a: tuple[Any, torch.Tensor, torch.Tensor],
                  b: tuple[Any, torch.Tensor, torch.Tensor]) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """(count, mean, var) of two sets of data -> those of their union: the parallel-variance formula of Chan et
    al., M2 = M2_a + M2_b + delta^2 n_a n_b / n with M2 = var * count (population variances; mean, var: (D,))."""
    count_a, mean_a, var_a = a
    count_b, mean_b, var_b = b
    total = count_a + count_b
    delta = mean_b - mean_a.to(torch.float64)
    mean = mean_a + delta * count_b / total
    m2 = var_a * count_a + var_b * count_b + delta.pow(2) * count_a * count_b / total
    return total, mean, m2 / total


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
        """Merge a batch x: (B, dim) into the statistics (``merge_moments``). Under torchrun the batch is every
        rank's (robopg/distributed.py): each rank's moments are merged in rank order, so all ranks normalise alike."""
        x = x.reshape(-1, self.mean.shape[0]).to(torch.float64)
        batch_count = x.shape[0]
        zeros = x.new_zeros(x.shape[1])
        local = (batch_count, x.mean(0), x.var(0, unbiased=False)) if batch_count else (0, zeros, zeros)
        parts = [part for part in distributed.world().gather_moments(*local) if part[0] > 0]
        if not parts:
            return
        total, mean, var = merge_moments((self.count, self.mean, self.var), reduce(merge_moments, parts))
        self.mean.copy_(mean)
        self.var.copy_(var)
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


class ReturnScaler:
    """Training rewards divided by the running std of the discounted return (Stable-Baselines3 VecNormalize's
    reward part, which the RL Baselines3 Zoo's ``normalize: true`` turns on):

        R_t = gamma R_{t-1} + r_t per env (R = 0 after an episode's end),   r'_t = clip(r_t / sqrt(Var[R] + eps), +-clip)

    Var[R] merges every step's R over the envs (``merge_moments``). The returns the run logs stay the raw ones;
    only what the update sees is scaled, so the critic's targets and the advantages keep a scale near 1 whatever the
    task's reward units (``[a2c] normalize_rewards``).
    """

    def __init__(self, gamma: float, clip: float = 10.0, eps: float = 1e-8) -> None:
        self.gamma, self.clip, self.eps = gamma, clip, eps
        self.stats = RunningNormalizer(1)
        self.running: torch.Tensor | None = None  # (N,) float64: each env's R so far

    @torch.no_grad()
    def __call__(self, rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
        """rewards, dones: (T, N) of one rollout, in order -> the scaled rewards (T, N) on the rewards' device;
        advances R and Var[R] (kept on the CPU)."""
        raw, ended = rewards.detach().cpu(), dones.detach().cpu().bool()
        if self.running is None:
            self.running = torch.zeros(raw.shape[1], dtype=torch.float64)
        out = torch.empty_like(raw)
        for t in range(raw.shape[0]):
            self.running = self.running * self.gamma + raw[t].to(torch.float64)
            self.stats.update(self.running[:, None])
            scale = torch.sqrt(self.stats.var[0].to(torch.float64) + self.eps)
            out[t] = torch.clamp(raw[t] / scale, -self.clip, self.clip).to(raw.dtype)
            self.running = torch.where(ended[t], torch.zeros_like(self.running), self.running)
        return out.to(rewards.device)

    def state_dict(self) -> dict[str, Any]:
        return {"stats": self.stats.state_dict(), "running": self.running}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stats.load_state_dict(state["stats"])
        self.running = state["running"]
