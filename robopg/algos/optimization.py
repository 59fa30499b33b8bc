"""What the gradient-descent algorithms share: one optimiser step, and epochs of shuffled minibatch steps.

PPO and PPO-KL differ only in the loss of a minibatch (their files); A2C, REINFORCE and the critic fit take one
``optimizer_step`` per loss; A3C computes its clipped gradient with ``clipped_backward`` and applies it to the
shared parameters itself. ``make_optimizer`` and ``scheduled_learning_rate`` build the optimiser and set its
step size from a config section.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from robopg import distributed
from robopg.config import LRSchedule, OptimizerKind
from robopg.storage import Batch, RolloutStorage


def make_optimizer(kind: OptimizerKind, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """Adam, or RMSprop with alpha 0.99 and eps 1e-5 (Mnih et al. 2016; Stable-Baselines3's A2C). Every optimiser
    of every algorithm is built here.

    Adam runs fused (one kernel over all parameters): on the CPU torch's default steps each tensor in a Python
    loop, 2.2 ms a step for the fetch-push preset's actor and critic against 0.7 ms fused, and PPO takes 64 steps
    an iteration (docs/batched_engine.md). The same update, rounded differently in the last bits."""
    if kind is OptimizerKind.RMSPROP:
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-5)
    return torch.optim.Adam(params, lr=lr, fused=True)


def linear_decay(lr: float, progress: float) -> float:
    """lr * (1 - progress), 0 from the end of the run on; progress: fraction of total_steps done."""
    return lr * max(1.0 - progress, 0.0)


def scheduled_learning_rate(optimizer: torch.optim.Optimizer, schedule: LRSchedule, lr: float,
                            progress: float) -> float:
    """Set every parameter group's step size to ``lr`` (constant) or its linear decay; returns the value set."""
    value = linear_decay(lr, progress) if schedule is LRSchedule.LINEAR else lr
    for group in optimizer.param_groups:
        group["lr"] = value
    return value


def clipped_backward(loss: torch.Tensor, params: Sequence[nn.Parameter], max_grad_norm: float) -> float:
    """Gradients of ``loss`` into ``params`` (their old ones dropped), averaged over the ranks under torchrun
    (robopg/distributed.py), clipped to a global norm of ``max_grad_norm``. Returns the norm before clipping."""
    for p in params:
        p.grad = None
    loss.backward()
    distributed.world().average_gradients(params)
    return float(nn.utils.clip_grad_norm_(params, max_grad_norm))


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, max_grad_norm: float) -> float:
    """One step of ``optimizer`` on ``loss``: zero the gradients of its parameters, backward, clip their global
    norm, step. Returns the gradient norm before clipping."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    grad_norm = clipped_backward(loss, params, max_grad_norm)
    optimizer.step()
    return grad_norm


def minibatch_epochs(
    storage: RolloutStorage,
    epochs: int,
    minibatches: int,
    generator: torch.Generator,
    normalize_advantages: bool,
    step: Callable[[Batch], dict[str, float]],
    epoch_done: Callable[[dict[str, float]], bool] | None = None,
) -> tuple[dict[str, float], bool]:
    """``epochs`` shuffled passes over the rollout in ``minibatches`` minibatches, calling ``step`` on each
    (it computes the loss, steps the optimiser and returns the minibatch's metrics).

    ``epoch_done`` (if any) gets each epoch's mean metrics and returns True to stop early. Returns every
    metric's mean over all steps taken, and whether the epochs stopped early.
    """
    sums: dict[str, float] = {}
    steps = 0
    for _epoch in range(epochs):
        epoch_sums: dict[str, float] = {}
        epoch_steps = 0
        for batch in storage.minibatches(minibatches, generator, normalize_advantages):
            for key, value in step(batch).items():
                epoch_sums[key] = epoch_sums.get(key, 0.0) + value
            epoch_steps += 1
        for key, value in epoch_sums.items():
            sums[key] = sums.get(key, 0.0) + value
        steps += epoch_steps
        if epoch_done is not None and epoch_done({k: v / epoch_steps for k, v in epoch_sums.items()}):
            return {k: v / steps for k, v in sums.items()}, True
    return {k: v / steps for k, v in sums.items()}, False
