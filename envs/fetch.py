"""The Fetch family's names, each stated once: its task ids, which of them have an object, the success key.

Everything else about a Fetch task (model, constants, MuJoCo ids) is read from the gymnasium-robotics env by
`envs.batched.fetch_task.FetchTask`; these are the facts needed before any env is built.
"""

from __future__ import annotations

FETCH_TASKS = tuple(
    f"Fetch{name}{dense}-v4" for name in ("Reach", "Push", "Slide", "PickAndPlace") for dense in ("", "Dense")
)
# FetchReach moves the gripper alone; Push, Slide and PickAndPlace move object0.
OBJECT_TASKS = tuple(task for task in FETCH_TASKS if not task.startswith("FetchReach"))
SUCCESS_KEY = "is_success"
"""The info key of per-step success, as every gymnasium-robotics goal env reports it."""


def has_object(task: str) -> bool:
    """True for the Fetch tasks with an object to move (Push, Slide, PickAndPlace, sparse and Dense)."""
    return task in OBJECT_TASKS
