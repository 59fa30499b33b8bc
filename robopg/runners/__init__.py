"""Running a training (rsl_rl's runners/ as the model): ``Trainer`` (trainer.py) owns the run directory,
checkpoints, resume and the one per-iteration step; the runner of the algorithm owns the loop:
``on_policy.run`` (collect -> update in this process) or ``a3c.run`` (worker processes on shared parameters).
Their contracts (``RunState``, ``Iteration``, ``RunHook``) are in iteration.py; docs/design.md draws the whole.
"""

from robopg.runners.trainer import Trainer

__all__ = ["Trainer"]
