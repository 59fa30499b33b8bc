"""What the gradient-descent algorithms share: one optimiser step, and epochs of shuffled minibatch steps.

PPO and PPO-KL differ only in the loss of a minibatch (their files); A2C, REINFORCE and the critic fit take one
``optimizer_step`` per loss; A3C computes its clipped gradient with ``clipped_backward`` and applies it to the
shared parameters itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from robopg import distributed
from robopg.storage import Batch, RolloutStorage


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
