"""``build_policy``: the run's policy for its task, the one constructor the runners and export call."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from robopg.config import Recurrent, TrainConfig
from robopg.facts import TaskFacts
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.modules.recurrent import RecurrentActorCritic
from robopg.modules.sde import SDEActorCritic


def build_policy(cfg: TrainConfig, facts: TaskFacts, generator: torch.Generator | None = None) -> GaussianActorCritic:
    """The run's policy for its task: what the runners train and export loads a checkpoint into; a
    ``RecurrentActorCritic`` with ``--recurrent lstm|gru``, an ``SDEActorCritic`` with ``--sde``."""
    # The actor reads K stacked observations and M past actions (envs/history.py); the robot still sends one
    # raw observation (facts.layout) and the runtime stacks it the same way (a recurrent actor too: its memory
    # then runs on the stacked input).
    input_dim = cfg.env.obs_history * facts.obs_dim + cfg.env.action_history * facts.act_dim
    critic_obs_dim = None if facts.privileged is None else facts.task_obs_dim + len(facts.privileged)
    # the action history is the actor input's last columns (envs/history.py)
    critic_actions = cfg.env.action_history * facts.act_dim if cfg.policy.critic_action_history else 0
    if critic_obs_dim is not None:
        critic_obs_dim += critic_actions
    policy_cls = GaussianActorCritic if cfg.policy.recurrent is Recurrent.NONE else RecurrentActorCritic
    if cfg.policy.sde:
        policy_cls = SDEActorCritic
    return policy_cls(input_dim, facts.act_dim, np.array(facts.action_low), np.array(facts.action_high),
                      dataclasses.replace(cfg.policy, init_log_std=cfg.init_log_std), critic_obs_dim, generator,
                      critic_actions=critic_actions)
