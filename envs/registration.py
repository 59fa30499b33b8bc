"""Registers the gymnasium-robotics tasks (Fetch, ...) with gymnasium, quietly.

Imported first by envs/__init__.py so every later `import gymnasium_robotics...` finds it loaded.
"""

import contextlib
import io

import gymnasium as gym

# gymnasium_robotics prints an Adroit-reward notice to stderr on import; it does not concern these tasks.
with contextlib.redirect_stderr(io.StringIO()):
    import gymnasium_robotics

gym.register_envs(gymnasium_robotics)
