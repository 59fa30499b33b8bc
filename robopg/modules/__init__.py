"""The networks: the Gaussian actor-critic and the observation normaliser inside it; ``build_policy`` makes a
run's policy from its config and task facts (the runners train it, export loads checkpoints into it)."""

from robopg.modules.actor_critic import GaussianActorCritic, build_policy
from robopg.modules.normalizer import RunningNormalizer

__all__ = ["GaussianActorCritic", "RunningNormalizer", "build_policy"]
