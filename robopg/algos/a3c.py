"""A3C: asynchronous advantage actor-critic (Mnih et al. 2016), Hogwild style.

Each worker process runs the shared rollout loop on its own environments with a local copy of the policy,
computes the A2C loss gradient (robopg/algos/a2c.py) on its own rollout, and applies it to parameters that
live in shared memory, through an optimiser (RMSprop or Adam) whose statistics are shared too, without taking
a lock (Mnih et al. 2016 found the shared RMSprop statistics the most robust): the
updates of different workers interleave, which Hogwild (Recht et al. 2011) shows still converges when each
update touches the parameters sparsely and briefly. The worker then copies the shared parameters back into
its local policy before it collects again. The process orchestration lives in robopg/runners/a3c.py.
"""

from __future__ import annotations

from typing import Any

import torch

from robopg.algos.a2c import actor_critic_loss
from robopg.algos.optimization import clipped_backward, make_optimizer, scheduled_learning_rate
from robopg.config import A3CConfig
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import RolloutStorage

# The per-parameter statistics each optimiser keeps besides its step count (RMSprop without momentum or centring).
_STATISTICS = {torch.optim.Adam: ("exp_avg", "exp_avg_sq"), torch.optim.RMSprop: ("square_avg",)}


def share_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Create the optimiser's per-parameter state now (it is lazy otherwise) and move it into shared memory, so
    every process that unpickles the optimizer steps the same statistics."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if not state:
                state["step"] = torch.zeros(())
                for key in _STATISTICS[type(optimizer)]:
                    state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
            for tensor in state.values():
                tensor.share_memory_()


class A3C:
    def __init__(self, policy: GaussianActorCritic, cfg: A3CConfig) -> None:
        policy.share_memory()
        self.shared_policy = policy
        self.cfg = cfg
        self.optimizer = make_optimizer(cfg.optimizer, list(policy.parameters()), cfg.learning_rate)
        share_optimizer_state(self.optimizer)
        self.local_policy: GaussianActorCritic | None = None

    def bind_worker(self, local_policy: GaussianActorCritic) -> None:
        """In a worker process: the policy that collects and computes gradients there."""
        self.local_policy = local_policy
        self.sync_local()

    def sync_local(self) -> None:
        """Local policy <- shared parameters and normaliser statistics."""
        assert self.local_policy is not None, "bind_worker(local_policy) first"
        self.local_policy.load_state_dict(self.shared_policy.state_dict())

    def update(self, storage: RolloutStorage, progress: float, generator: torch.Generator) -> dict[str, float]:
        """Gradient of the A2C loss on the local copy, applied to the shared parameters (no lock)."""
        local = self.local_policy
        if local is None:
            raise RuntimeError("A3C.update runs in a worker: call bind_worker(local_policy) first")
        cfg = self.cfg
        lr = scheduled_learning_rate(self.optimizer, cfg.lr_schedule, cfg.learning_rate, progress)
        loss, metrics = actor_critic_loss(local, storage, cfg)
        metrics["grad_norm"] = clipped_backward(loss, list(local.parameters()), cfg.max_grad_norm)
        metrics["learning_rate"] = lr
        for shared, own in zip(self.shared_policy.parameters(), local.parameters(), strict=True):
            shared.grad = own.grad
        self.optimizer.step()  # the worker loop syncs the local copy before its next rollout
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy into the existing shared tensors: Optimizer.load_state_dict would replace them with private ones."""
        saved = state["optimizer"]["state"]
        for index, p in enumerate(self.shared_policy.parameters()):
            for key, tensor in self.optimizer.state[p].items():
                tensor.copy_(saved[index][key])
