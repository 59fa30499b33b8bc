"""The networks: the Gaussian actor-critic (feed-forward, or recurrent with an LSTM/GRU) and the observation
normaliser inside it; ``build_policy`` makes a run's policy from its config and task facts (the runners train it,
export loads checkpoints into it)."""

from robopg.modules.actor_critic import GaussianActorCritic
from robopg.modules.build import build_policy
from robopg.modules.normalizer import RunningNormalizer
from robopg.modules.recurrent import RecurrentActorCritic

__all__ = ["GaussianActorCritic", "RecurrentActorCritic", "RunningNormalizer", "build_policy"]
