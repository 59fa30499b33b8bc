"""Can a feed-forward policy tell its robot's action latency from one observation and its last M actions?

A delay of k control steps means the robot executes, at step t, the action chosen at t - k
(``envs/corruption.py``). The gripper's displacement over the last step (``grip_velp``, observation[20:23]:
velocity x dt) therefore answers to a_{t-1-k}. A policy that sees its last M actions
(``--action-history M``, ``envs/history.py``) can match that displacement against them, but only for
k <= M - 1: with M = 3, a 3-step delay's executed action a_{t-4} has already left the history, and k = 3 can be
told only by elimination (no action in the history matches); with smooth actions it reads as k = 2, so the policy
believes one action fewer is still queued than there is.

This script measures that with the real components: FetchPush-v4 on the batched backend under a fixed k-step
delay (nothing else randomised, or ``--randomization SPEC``'s other parameters too), the real latency queue and
``HistoryStack``, and smooth random actions (an Ornstein-Uhlenbeck walk, like a rate-penalised policy's). For
each M it fits the displacement per unit action, then guesses k as the history action that best explains the
displacement (for the elimination case, M = 3: "3" when none explains it as well as 95% of the k <= 2 steps are
explained), and prints how often each k is identified (docs/sim2real.md section 8 cites it).

    python scripts/latency_identifiability.py            # ~20 s on 2 cores
    python scripts/latency_identifiability.py --histories 3 4 5 --envs 16 --seed 0
    python scripts/latency_identifiability.py --randomization sim2real   # with the spec's noise and dynamics
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TASK = "FetchPush-v4"
GRIP_DISPLACEMENT = slice(20, 23)  # grip_velp: the gripper's velocity x dt, i.e. its displacement over the last step
DELAYS = range(4)  # 0-3 steps: the sim2real spec's action_latency range


def record(k: int, history: int, envs_n: int, steps: int, seed: int, randomization: str = "none"
           ) -> tuple[np.ndarray, np.ndarray]:
    """Displacements (S, 3) and action histories (S, history, 3) (oldest first) under a fixed k-step delay, on top
    of ``randomization`` (a spec's other parameters: noise, dynamics)."""
    import envs
    from envs.history import HistoryStack

    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / f"latency_{k}.toml"
        spec.write_text(f'[action_latency]\ndistribution = "fixed"\nvalue = {k}\n')
        vec = HistoryStack(envs.make_vec(TASK, envs_n, seed, randomization=randomization, profile=spec,
                                         backend="batched"), 1, history)
    rng = np.random.default_rng(seed + k)
    stack, _ = vec.reset(seed=seed)
    act_dim = vec.single_action_space.shape[0]
    obs_dim = vec.obs_dim
    action = np.zeros((envs_n, act_dim), dtype=np.float32)
    displacement, past = [], []
    for t in range(steps):
        if t >= history + 3:  # past the neutral actions a reset fills the queue and history with
            displacement.append(stack[:, GRIP_DISPLACEMENT].copy())
            past.append(stack[:, obs_dim:].reshape(envs_n, history, act_dim)[:, :, :3].copy())
        action = np.clip(0.8 * action + 0.35 * rng.normal(size=action.shape), -1, 1).astype(np.float32)
        stack, *_ = vec.step(action)
    vec.close()
    return np.concatenate(displacement), np.concatenate(past)


def identified(history: int, envs_n: int, steps: int, seed: int, randomization: str = "none"
               ) -> tuple[float, list[float], list[list[int]]]:
    """(displacement per unit action (m), fraction of steps whose k is identified, per k; guesses for each k)."""
    data = {k: record(k, history, envs_n, steps, seed, randomization) for k in DELAYS}
    # displacement ~ gain * a_{t-1-k}; the executed action of k <= history - 1 is column -1 - k of the history.
    gain = float(np.median([np.linalg.lstsq(h[:, -1 - k], d, rcond=None)[0].diagonal().mean()
                            for k, (d, h) in data.items() if k < history]))
    errors = {k: np.stack([np.linalg.norm(d - gain * h[:, -1 - j], axis=1) for j in range(history)], axis=1)
              for k, (d, h) in data.items()}
    guesses = {k: e.argmin(axis=1) for k, e in errors.items()}
    if history <= max(DELAYS):  # a delay whose executed action left the history: only by elimination
        tolerance = np.quantile(np.concatenate([errors[k].min(axis=1) for k in range(history)]), 0.95)
        guesses = {k: np.where(errors[k].min(axis=1) > tolerance, history, g) for k, g in guesses.items()}
    rates = [float((guesses[k] == k).mean()) for k in DELAYS]
    read_as = [np.bincount(guesses[k], minlength=max(len(DELAYS), history)).tolist() for k in DELAYS]
    return gain, rates, read_as


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--histories", type=int, nargs="+", default=[3, 4, 5], help="action history lengths M")
    parser.add_argument("--envs", type=int, default=16, help="envs (episodes) per latency")
    parser.add_argument("--steps", type=int, default=50, help="steps per env: one episode of the task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--randomization", default="none",
                        help="a spec whose other parameters (noise, dynamics) apply too, e.g. sim2real; its latency "
                             "is replaced by each fixed k")
    args = parser.parse_args()
    for m in args.histories:
        if m < 1:
            parser.error(f"--histories: {m} actions cannot be matched; use M >= 1")
        gain, rates, read_as = identified(m, args.envs, args.steps, args.seed, args.randomization)
        print(f"M={m}: displacement per unit action {gain:.4f} m; k identified from one observation: "
              + ", ".join(f"k={k} {r:.2f}" for k, r in enumerate(rates))
              + f"; k=3 read as k=0..{len(read_as[3]) - 1}: {read_as[3]}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
