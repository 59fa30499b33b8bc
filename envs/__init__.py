"""Tasks, observation layouts, domain randomisation and vector backends for robopg.

Imports only numpy, mujoco, gymnasium and gymnasium-robotics (never torch, robopg or policies_export).
"""

import envs.registration  # noqa: F401  (first: quiet gymnasium-robotics import and registration)
from envs.domain_randomization import DomainRandomization
from envs.layout import FlattenObservation, ObservationLayout
from envs.randomization import RandomizationSpec, list_profiles, load_profile, load_spec
from envs.tasks import TaskInfo, describe_task, make_env
from envs.vector import Backend, make_vec, privileged_names, set_env_spec

__all__ = [
    "Backend",
    "DomainRandomization",
    "FlattenObservation",
    "ObservationLayout",
    "RandomizationSpec",
    "TaskInfo",
    "describe_task",
    "list_profiles",
    "load_profile",
    "load_spec",
    "make_env",
    "make_vec",
    "privileged_names",
    "set_env_spec",
]
