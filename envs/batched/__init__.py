"""The batched MuJoCo backend for the Fetch family: N environments per `mujoco.rollout` call.

fetch_task.py  what a Fetch task is (constants and ids read from the gymnasium-robotics env)
engine.py      physics (mujoco.rollout thread pool) and per-step kinematics readouts
observations.py, sampling.py   observations, rewards, success; object and goal sampling
vector_env.py  the vector env (`envs.make_vec(..., backend="batched")`)
"""

from envs.batched.fetch_task import FETCH_TASKS, FetchTask, is_batched_task
from envs.batched.vector_env import BatchedFetchVecEnv

__all__ = ["FETCH_TASKS", "BatchedFetchVecEnv", "FetchTask", "is_batched_task"]
