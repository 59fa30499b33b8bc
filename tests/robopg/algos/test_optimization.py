"""The gradient-descent pieces the algorithms share, against hand-worked values: one clipped optimiser step,
epochs of shuffled minibatches that visit every sample once per epoch and stop when asked, the optimisers and
the learning-rate schedules."""

import pytest
import torch
from torch import nn

from robopg.algos.optimization import (
    make_optimizer,
    minibatch_epochs,
    optimizer_step,
    scheduled_learning_rate,
)
from robopg.config import A2CConfig, LRSchedule, OptimizerKind, PPOConfig, PPOKLConfig
from robopg.storage import Batch, RolloutStorage


def test_optimizer_step_zeroes_clips_and_steps():
    w = nn.Parameter(torch.tensor([0.0, 0.0]))
    sgd = torch.optim.SGD([w], lr=1.0)
    w.grad = torch.tensor([100.0, 100.0])  # stale: must be dropped, not added to
    # loss = 0.5 |w - (3, 4)|^2 -> gradient (-3, -4), norm 5; clipped to norm 1 -> (-0.6, -0.8).
    norm = optimizer_step(sgd, 0.5 * (w - torch.tensor([3.0, 4.0])).pow(2).sum(), max_grad_norm=1.0)
    assert norm == 5.0
    torch.testing.assert_close(w.detach(), torch.tensor([0.6, 0.8]))


def storage_of_eight() -> RolloutStorage:
    """T = 4 steps, N = 2 envs; sample t * N + n has observation t * N + n and advantage 2 (t * N + n)."""
    storage = RolloutStorage(4, 2, obs_dim=1, act_dim=1)
    ids = torch.arange(8.0).reshape(4, 2)
    storage.obs[:] = ids.unsqueeze(-1)
    storage.advantages = 2 * ids
    storage.returns = torch.zeros(4, 2)
    return storage


def test_every_epoch_visits_every_sample_once_and_metrics_are_means():
    seen: list[list[int]] = []

    def step(batch: Batch) -> dict[str, float]:
        seen.append(batch.obs.reshape(-1).int().tolist())
        return {"batch_size": float(len(batch.obs)), "first": float(batch.obs[0])}

    metrics, stopped = minibatch_epochs(storage_of_eight(), 3, 2, torch.Generator().manual_seed(0), False, step)
    assert not stopped and len(seen) == 6
    for epoch in range(3):
        assert sorted(seen[2 * epoch] + seen[2 * epoch + 1]) == list(range(8))
    assert seen[0] != seen[2] or seen[2] != seen[4]  # reshuffled between epochs
    assert metrics["batch_size"] == 4.0
    assert metrics["first"] == sum(s[0] for s in seen) / 6


def test_an_epoch_hook_sees_epoch_means_and_stops_early():
    epochs: list[dict[str, float]] = []

    def stop_after_second(epoch: dict[str, float]) -> bool:
        epochs.append(epoch)
        return len(epochs) == 2

    steps = iter(range(100))
    metrics, stopped = minibatch_epochs(storage_of_eight(), 5, 4, torch.Generator().manual_seed(1), False,
                                        lambda batch: {"k": float(next(steps))}, stop_after_second)
    assert stopped and [e["k"] for e in epochs] == [1.5, 5.5]  # means of 0..3 and 4..7
    assert metrics["k"] == 3.5  # mean over the 8 steps taken


def test_minibatch_advantages_are_normalised_per_minibatch_when_asked():
    batches: list[Batch] = []
    minibatch_epochs(storage_of_eight(), 1, 2, torch.Generator().manual_seed(2), True,
                     lambda batch: batches.append(batch) or {})
    for batch in batches:
        raw = 2 * batch.obs.reshape(-1)
        torch.testing.assert_close(batch.advantages, (raw - raw.mean()) / (raw.std() + 1e-8))


def test_linear_schedule_falls_to_zero_and_constant_keeps_the_rate():
    params = [torch.nn.Parameter(torch.zeros(3))]
    optimizer = make_optimizer(OptimizerKind.RMSPROP, params, lr=0.1)
    assert isinstance(optimizer, torch.optim.RMSprop) and optimizer.defaults["alpha"] == 0.99
    assert optimizer.defaults["eps"] == 1e-5
    for progress, expected in ((0.0, 0.1), (0.25, 0.075), (1.0, 0.0), (1.2, 0.0)):
        assert scheduled_learning_rate(optimizer, LRSchedule.LINEAR, 0.1, progress) == pytest.approx(expected)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected)
    assert scheduled_learning_rate(optimizer, LRSchedule.CONSTANT, 0.1, 0.9) == 0.1
    assert isinstance(make_optimizer(OptimizerKind.ADAM, params, lr=0.1), torch.optim.Adam)


def test_adam_is_fused_and_follows_kingma_and_ba():
    """Two steps on loss = 0.5 |w - target|^2 against Adam's equations worked by hand (beta 0.9 / 0.999, eps 1e-8):
    m_t = b1 m + (1 - b1) g, v_t = b2 v + (1 - b2) g^2, w -= lr (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps)."""
    w = nn.Parameter(torch.tensor([1.0, -2.0]))
    target = torch.tensor([0.0, 1.0])
    optimizer = make_optimizer(OptimizerKind.ADAM, [w], lr=0.1)
    assert optimizer.defaults["fused"] is True
    expected, m, v = w.detach().clone().double(), torch.zeros(2).double(), torch.zeros(2).double()
    for t in (1, 2):
        optimizer_step(optimizer, 0.5 * (w - target).pow(2).sum(), max_grad_norm=float("inf"))
        g = expected - target.double()  # the gradient at the weights before this step
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        expected = expected - 0.1 * (m / (1 - 0.9**t)) / ((v / (1 - 0.999**t)).sqrt() + 1e-8)
        torch.testing.assert_close(w.detach().double(), expected, atol=1e-6, rtol=0)
    # By hand: step 1 moves each weight by lr against its gradient's sign (m_hat / sqrt(v_hat) = sign(g) = (1, -1)):
    # (0.9, -1.9). Step 2, g = (0.9, -2.9): m_hat = (0.18, -0.56) / 0.19, v_hat = (0.001809, 0.017401) / 0.001999,
    # m_hat / sqrt(v_hat) = (0.995878, -0.998972), so w = (0.800412, -1.800103).
    torch.testing.assert_close(w.detach(), torch.tensor([0.800412, -1.800103]), atol=2e-6, rtol=0)


def test_only_ppo_takes_the_kl_adaptive_schedule():
    assert PPOConfig(lr_schedule="adaptive").lr_schedule is LRSchedule.ADAPTIVE
    for section in (A2CConfig, PPOKLConfig):
        with pytest.raises(ValueError, match="lr_schedule adaptive is not available here.*constant"):
            section(lr_schedule="adaptive")
