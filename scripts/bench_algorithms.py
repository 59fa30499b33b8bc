"""Algorithm benchmark: every --algo beside its peer implementations, same tasks, step budgets, seeds and episodes.

robopg: each algorithm runs with its own defaults (``robopg train --algo A --help``) plus the per-task settings in
TASKS, the same for every algorithm (discount, env count, and for REINFORCE a rollout long enough to hold whole
episodes). Each run is exported and its ONNX file evaluated through the controller runtime: the deployed policy
is what is scored.

Peers: Stable-Baselines3 PPO and A2C and sb3-contrib TRPO, trained on the same environments (``envs.make_env``:
the same flat observations and randomisation) for the same number of env steps, (1) with their documented
defaults and the task's env count (``sb3``) and (2) where the RL Baselines3 Zoo publishes tuned hyperparameters
for the task, with those (``sb3-zoo``, ZOO below; its env count and VecNormalize where it says so). A peer is
scored by its deterministic policy (``predict(deterministic=True)``) on the same evaluation episodes as robopg's
file (the same SimRobot seeds). ``random`` is a uniform random policy on those episodes. torch runs on one
thread for every implementation (robopg's default; the peers' set here).

    python scripts/bench_algorithms.py --seeds 0 1 2            # the tables in docs/bench_algorithms.md
    python scripts/bench_algorithms.py --halfcheetah --seeds 0   # ppo, trpo, a2c, ppo-kl on HalfCheetah-v5, 1M steps

Writes docs/bench_algorithms.json (every run, with its curve), docs/bench_algorithms.md (tables) and
docs/bench_algorithms.png (learning curves). Finished runs in --out-dir are reused, so an interrupted benchmark
continues where it stopped.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import math
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from policies_export.safety import SafetyConfig
from robopg.config import Algo, TrainConfig
from robopg.evaluate import evaluate_policy
from robopg.export import export_policy
from robopg.logger import read_metrics
from robopg.runners import Trainer
from robopg.sim_robot import SimRobot


@dataclass(frozen=True)
class TaskSetup:
    steps: int
    num_envs: int = 8
    randomization: str = "none"
    section: dict[str, Any] = field(default_factory=dict)  # applied to every algorithm's section
    per_algo: dict[str, dict[str, Any]] = field(default_factory=dict)  # extra, by algorithm


TASKS: dict[str, TaskSetup] = {
    "InvertedPendulum-v5": TaskSetup(steps=100_000, section={"gamma": 0.99}),
    "Pendulum-v1": TaskSetup(steps=200_000, section={"gamma": 0.95},
                             per_algo={"reinforce": {"rollout_steps": 200}}),  # 200-step episodes
    "FetchReachDense-v4": TaskSetup(steps=50_000, num_envs=16, randomization="default"),
}
# PPO and PPO-KL with CleanRL's ppo_continuous_action settings where robopg has them: 2048 samples per rollout, 10
# epochs, minibatches of 64, gamma 0.99, lambda 0.95, clip 0.2; 8 envs x 256 steps instead of 1 x 2048. TRPO and A2C
# with their own defaults at gamma 0.99.
CLEANRL_PPO = {"rollout_steps": 256, "minibatches": 32, "learning_rate": 3e-4}
HALFCHEETAH = {
    "HalfCheetah-v5": TaskSetup(
        steps=1_000_000, num_envs=8, section={"gamma": 0.99},
        per_algo={Algo.PPO.value: CLEANRL_PPO, Algo.PPO_KL.value: CLEANRL_PPO},
    ),
}
HALFCHEETAH_ALGOS = (Algo.PPO, Algo.TRPO, Algo.A2C, Algo.PPO_KL)  # the set: no REINFORCE or A3C at 1M steps
EVAL_SEED = 10_000  # episode i of every evaluation starts from reset(seed=EVAL_SEED + i)
# The peers' loop has no read-time watchdog; robopg's would turn a read delayed by the loaded machine into a
# fallback (safe action). Scored on the policy, not the scheduler.
UNHURRIED = SafetyConfig(max_read_s=10.0)
CURVE_BINS = 20


@dataclass(frozen=True)
class PeerSetup:
    """One peer variant on one task: constructor arguments beyond the documented defaults, its env count
    (None: the task's), and VecNormalize of observations and rewards (the zoo's ``normalize: true``)."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    num_envs: int | None = None
    normalize: bool = False
    source: str = "documented defaults"


PEER_CLASSES = {Algo.PPO: "stable_baselines3:PPO", Algo.A2C: "stable_baselines3:A2C", Algo.TRPO: "sb3_contrib:TRPO"}
IMPLS = ("robopg", "sb3", "sb3-zoo", "random")
LIN = "lin"  # a zoo "lin_X" learning rate: X * progress_remaining

# The RL Baselines3 Zoo's tuned entries for these tasks (hyperparams/{a2c,ppo,trpo}.yml); none exists for
# FetchReachDense (the zoo tunes it for HER only). InvertedPendulum: the zoo's InvertedPendulum-v2 entry (the
# same task on the older MuJoCo bindings). Its n_timesteps is replaced by the benchmark's budget.
ZOO: dict[tuple[str, Algo], PeerSetup] = {
    ("Pendulum-v1", Algo.A2C): PeerSetup(
        dict(ent_coef=0.0, max_grad_norm=0.5, n_steps=8, gae_lambda=0.9, vf_coef=0.4, gamma=0.9, use_rms_prop=True,
             normalize_advantage=False, learning_rate=(LIN, 7e-4), use_sde=True,
             policy_kwargs=dict(log_std_init=-2, ortho_init=False)),
        num_envs=8, normalize=True, source="zoo a2c.yml Pendulum-v1"),
    ("Pendulum-v1", Algo.PPO): PeerSetup(
        dict(n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0, learning_rate=1e-3,
             clip_range=0.2, use_sde=True, sde_sample_freq=4),
        num_envs=4, source="zoo ppo.yml Pendulum-v1"),
    ("Pendulum-v1", Algo.TRPO): PeerSetup(
        dict(n_steps=1024, gamma=0.9, n_critic_updates=15, use_sde=True, sde_sample_freq=4),
        num_envs=2, source="zoo trpo.yml Pendulum-v1"),
    ("InvertedPendulum-v5", Algo.PPO): PeerSetup(
        dict(batch_size=64, n_steps=32, gamma=0.999, learning_rate=0.000222425, ent_coef=1.37976e-07, clip_range=0.4,
             n_epochs=5, gae_lambda=0.9, max_grad_norm=0.3, vf_coef=0.19816),
        num_envs=1, normalize=True, source="zoo ppo.yml InvertedPendulum-v2"),
}


def run_dir_of(out_dir: Path, task: str, impl: str, algo: str, seed: int) -> Path:
    return out_dir / task / (algo if impl == "robopg" else f"{impl}-{algo}") / f"seed{seed}"


def run_robopg(task: str, setup: TaskSetup, algo: Algo, seed: int, out_dir: Path, episodes: int) -> dict[str, Any]:
    run_dir = run_dir_of(out_dir, task, "robopg", algo.value, seed)
    section = {**setup.section, **setup.per_algo.get(algo.value, {})}
    cfg = TrainConfig().replace({
        "env": {"task": task, "num_envs": setup.num_envs, "randomization": setup.randomization},
        "run": {"algo": algo, "total_steps": setup.steps, "seed": seed, "checkpoint_every": 0},
        algo.section: section,
    })
    timing = run_dir / "train_seconds.json"
    if not (run_dir / "final.pt").is_file():
        _clear(run_dir)
        start = time.perf_counter()
        Trainer(cfg, run_dir, progress=False).train()
        timing.write_text(json.dumps(time.perf_counter() - start))
    policy = export_policy(run_dir, run_dir / "policy.onnx").path
    result = evaluate_policy(policy, task=task, profile=None, randomization="none", episodes=episodes, seed=EVAL_SEED,
                             safety=UNHURRIED)
    rows = read_metrics(run_dir)
    curve = _curve([(r["step"], r["episode_return"]) for r in rows], setup.steps)
    return _result(task, "robopg", algo.value, seed, setup.steps, {"num_envs": setup.num_envs,
                   "randomization": setup.randomization, algo.section: section}, float(json.loads(timing.read_text())),
                   result.mean_return, result.std_return, result.success_rate, episodes, curve)


def _clear(run_dir: Path) -> None:
    """An unfinished run directory from an interrupted benchmark: start it again."""
    if run_dir.exists():
        for stale in sorted(run_dir.rglob("*"), reverse=True):
            stale.unlink() if stale.is_file() else stale.rmdir()


def _result(task: str, impl: str, algo: str, seed: int, steps: int, settings: dict[str, Any], seconds: float,
            mean: float, std: float, success: float | None, episodes: int, curve: list[list[float]]) -> dict[str, Any]:
    return {"task": task, "impl": impl, "algo": algo, "seed": seed, "total_steps": steps, "settings": settings,
            "train_seconds": seconds, "eval_mean_return": mean, "eval_std_return": std, "eval_success_rate": success,
            "eval_episodes": episodes, "curve": curve}


def _curve(points: list[tuple[float, float]], total: int) -> list[list[float]]:
    """[bin end step, mean training episode return in the bin] over CURVE_BINS equal step bins."""
    edges = np.linspace(0, total, CURVE_BINS + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        values = [r for step, r in points if lo < step <= hi and not math.isnan(r)]
        out.append([float(hi), float(np.mean(values)) if values else math.nan])
    return out


# ----- peers ---------------------------------------------------------------------------------------------------------
def peer_setup(task: str, algo: Algo, impl: str) -> PeerSetup | None:
    """The peer variant ``impl`` of ``algo`` on ``task``; None where it has none (no zoo entry)."""
    if algo not in PEER_CLASSES:
        return None
    return PeerSetup() if impl == "sb3" else ZOO.get((task, algo))


def run_peer(task: str, setup: TaskSetup, algo: Algo, impl: str, seed: int, out_dir: Path,
             episodes: int) -> dict[str, Any] | None:
    peer = peer_setup(task, algo, impl)
    if peer is None:
        return None
    from stable_baselines3.common.vec_env import VecNormalize

    run_dir = run_dir_of(out_dir, task, impl, algo.value, seed)
    module, name = PEER_CLASSES[algo].split(":")
    cls = getattr(importlib.import_module(module), name)
    num_envs = peer.num_envs or setup.num_envs
    done_file = run_dir / "train.json"
    if not done_file.is_file():
        _clear(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(1)
        env = _peer_env(task, setup.randomization, num_envs, seed, peer)
        kwargs = {k: _schedule(v) for k, v in copy.deepcopy(peer.kwargs).items()}  # SB3 edits policy_kwargs
        model = cls("MlpPolicy", env, seed=seed, device="cpu", **kwargs)
        episodes_seen = _EpisodeLog()
        start = time.perf_counter()
        model.learn(total_timesteps=setup.steps, callback=episodes_seen.callback())
        seconds = time.perf_counter() - start
        model.save(run_dir / "model.zip")
        if peer.normalize:
            env.save(str(run_dir / "vecnormalize.pkl"))
        env.close()
        done_file.write_text(json.dumps({"seconds": seconds, "steps": model.num_timesteps,
                                         "episodes": episodes_seen.points}))
    trained = json.loads(done_file.read_text())
    model = cls.load(run_dir / "model.zip", device="cpu")
    normalizer = None
    if peer.normalize:
        normalizer = VecNormalize.load(str(run_dir / "vecnormalize.pkl"), _peer_env(task, "none", 1, seed, PeerSetup()))
        normalizer.training = False
    mean, std, success = _peer_returns(task, model, normalizer, episodes)
    # SB3 collects whole rollouts, so it may take more steps than the budget (recorded as steps_taken).
    settings = {"num_envs": num_envs, "randomization": setup.randomization, "normalize": peer.normalize,
                "source": peer.source, "steps_taken": trained["steps"], name: peer.kwargs}
    return _result(task, impl, algo.value, seed, setup.steps, settings, float(trained["seconds"]), mean, std, success,
                   episodes, _curve([tuple(p) for p in trained["episodes"]], setup.steps))


def _schedule(value: Any) -> Any:
    if isinstance(value, tuple) and value[0] == LIN:
        start = value[1]
        return lambda progress_remaining: progress_remaining * start
    return value


def _peer_env(task: str, randomization: str, num_envs: int, seed: int, peer: PeerSetup):
    """The training envs robopg would build (envs.make_env), in SB3's sequential vector env, each env seeded
    seed + i; episode returns recorded (VecMonitor) before any reward normalisation."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

    import envs

    vec = VecMonitor(DummyVecEnv([
        (lambda i=i: envs.make_env(task, seed=seed + i, randomization=randomization)) for i in range(num_envs)
    ]))
    vec.seed(seed)
    if peer.normalize:
        return VecNormalize(vec, gamma=peer.kwargs.get("gamma", 0.99))
    return vec


class _EpisodeLog:
    """(env steps so far, return) of every training episode, from VecMonitor's infos."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float]] = []

    def callback(self):
        from stable_baselines3.common.callbacks import BaseCallback

        log = self

        class Record(BaseCallback):
            def _on_step(self) -> bool:
                for info in self.locals["infos"]:
                    if "episode" in info:
                        log.points.append((self.num_timesteps, float(info["episode"]["r"])))
                return True

        return Record()


def _peer_returns(task: str, model: Any, normalizer: Any, episodes: int) -> tuple[float, float, float | None]:
    """A peer's deterministic policy on the evaluation episodes of robopg's files (the same SimRobot seeds)."""
    robot = SimRobot(task, seed=EVAL_SEED, randomization="none")
    try:
        while len(robot.episode_returns) < episodes:
            obs = robot.read()
            if normalizer is not None:
                obs = normalizer.normalize_obs(obs[None])[0]
            action, _ = model.predict(obs, deterministic=True)
            robot.apply(np.asarray(action, dtype=np.float32))
            if robot.episode_done() and len(robot.episode_returns) < episodes:
                robot.reset()
    finally:
        robot.close()
    return _scores(robot)


def run_random(task: str, setup: TaskSetup, seed: int, episodes: int) -> dict[str, Any]:
    """Uniform random actions on the evaluation episodes: the floor every learner must clear."""
    robot = SimRobot(task, seed=EVAL_SEED, randomization="none")
    rng = np.random.default_rng(seed)
    space = robot.env.action_space
    try:
        while len(robot.episode_returns) < episodes:
            robot.apply(rng.uniform(space.low, space.high).astype(np.float32))
            if robot.episode_done() and len(robot.episode_returns) < episodes:
                robot.reset()
    finally:
        robot.close()
    mean, std, success = _scores(robot)
    return _result(task, "random", "random", seed, setup.steps, {}, 0.0, mean, std, success, episodes,
                   [[float(setup.steps), math.nan]])


def _scores(robot: SimRobot) -> tuple[float, float, float | None]:
    returns = robot.episode_returns
    success = float(np.mean(robot.episode_successes)) if robot.episode_successes else None
    return float(np.mean(returns)), float(np.std(returns)), success


# ----- report --------------------------------------------------------------------------------------------------------
def _runs(results: list[dict[str, Any]], task: str, impl: str, algo: str) -> list[dict[str, Any]]:
    return [r for r in results if r["task"] == task and r["impl"] == impl and r["algo"] == algo]


def _cell(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "-"
    returns = [r["eval_mean_return"] for r in runs]
    cell = f"{np.mean(returns):.1f} +- {np.std(returns):.1f}"
    successes = [r["eval_success_rate"] for r in runs if r["eval_success_rate"] is not None]
    if successes:
        cell += f" [{np.mean(successes):.2f}]"
    if runs[0]["impl"] != "random":
        cell += f" ({np.mean([r['train_seconds'] for r in runs]) / 60:.1f} min)"
    return cell


def write_table(results: list[dict[str, Any]], extra: list[dict[str, Any]], path: Path, command: str) -> None:
    tasks = [t for t in TASKS if any(r["task"] == t for r in results)]
    seeds = sorted({r["seed"] for r in results if r["impl"] != "random"})
    lines = [
        "# Algorithm benchmark: robopg beside its peers",
        "",
        f"Produced by `{command}` on {platform.processor() or platform.machine()} ({platform.node()}, 2 cores "
        "shared with other work: minutes are wall time under whatever load the machine had at the time, so they "
        "compare runs only roughly; the benchmark's own runs go one at a time). Every cell: mean +- std over seeds of the mean return over "
        f"{results[0]['eval_episodes']} deterministic evaluation episodes (the same episode seeds for every row), "
        "[success rate] where the task has one, (training minutes per run). robopg rows score the exported ONNX "
        "file through the controller runtime; peer rows score the peer's deterministic policy. `sb3`: the "
        "peer's documented defaults with the task's env count; `sb3-zoo`: the RL Baselines3 Zoo's tuned "
        "hyperparameters where it publishes them for the task. Settings of every run: docs/bench_algorithms.json "
        "and `scripts/bench_algorithms.py`.",
        "",
        "| algorithm | implementation | " + " | ".join(f"{t} ({TASKS[t].steps:,} steps)" for t in tasks) + " |",
        "|---|---|" + "---|" * len(tasks),
    ]
    for algo in [a.value for a in Algo] + ["random"]:
        for impl in IMPLS:
            if any(_runs(results, t, impl, algo) for t in tasks):
                cells = [_cell(_runs(results, t, impl, algo)) for t in tasks]
                lines.append(f"| {algo} | {impl} | " + " | ".join(cells) + " |")
    lines += ["", f"Seeds: {seeds}.", "", "![learning curves](bench_algorithms.png)", "",
              *target_lines(results, tasks)]
    if extra:
        lines += [
            "## HalfCheetah-v5, 1,000,000 steps (`python scripts/bench_algorithms.py --halfcheetah --seeds ...`)",
            "",
            "Deployed return over the evaluation episodes (mean +- std over them), per seed; settings of each run "
            "in docs/bench_algorithms.json.",
            "",
            "| algorithm | implementation | seed | deployed return | training minutes |",
            "|---|---|---|---|---|",
        ]
        for r in sorted(extra, key=lambda r: ([a.value for a in Algo].index(r["algo"]), r["impl"], r["seed"])):
            lines.append(f"| {r['algo']} | {r['impl']} | {r['seed']} | {r['eval_mean_return']:.0f} +- "
                         f"{r['eval_std_return']:.0f} | {r['train_seconds'] / 60:.1f} |")
        lines.append("")
    path.write_text("\n".join(lines))


def _mean(results: list[dict[str, Any]], task: str, impl: str, algo: str, key: str = "eval_mean_return") -> float:
    runs = _runs(results, task, impl, algo)
    return float(np.mean([r[key] for r in runs])) if runs else math.nan


def target_lines(results: list[dict[str, Any]], tasks: list[str]) -> list[str]:
    """The targets of docs/design.md's algorithm row, each checked on the table above."""
    lines = ["## Targets", "", "| target | task | robopg | reference | met |", "|---|---|---|---|---|"]
    for algo in ("ppo", "a2c", "trpo"):
        for task in tasks:
            ours = _runs(results, task, "robopg", algo)
            peers = [(impl, _runs(results, task, impl, algo)) for impl in ("sb3", "sb3-zoo")]
            peers = [(impl, runs) for impl, runs in peers if runs]
            if not ours or not peers:
                continue
            impl, best = max(peers, key=lambda p: np.mean([r["eval_mean_return"] for r in p[1]]))
            best_mean = np.mean([r["eval_mean_return"] for r in best])
            best_std = np.std([r["eval_mean_return"] for r in best])
            mean = np.mean([r["eval_mean_return"] for r in ours])
            fast = np.mean([r["train_seconds"] for r in ours]) <= np.mean([r["train_seconds"] for r in best])
            met = mean >= best_mean - best_std
            lines.append(f"| {algo} >= best peer (within its seed std), no slower | {task} | {mean:.1f} | "
                         f"{impl} {best_mean:.1f} +- {best_std:.1f} | {_yes(met)} return, {_yes(fast)} time |")
    for task in tasks:  # a target whose runs are missing is left out
        floor = _mean(results, task, "random", "random")
        ppo, ppo_kl = _mean(results, task, "robopg", "ppo"), _mean(results, task, "robopg", "ppo-kl")
        if not math.isnan(ppo_kl + ppo + floor):
            share = (ppo_kl - floor) / (ppo - floor)
            lines.append(f"| ppo-kl within 15% of ppo (of ppo's gain over random) | {task} | {ppo_kl:.1f} "
                         f"({share:.0%} of the gain) | ppo {ppo:.1f}, random {floor:.1f} | {_yes(share >= 0.85)} |")
        a3c, a2c = _mean(results, task, "robopg", "a3c"), _mean(results, task, "robopg", "a2c")
        if not math.isnan(a3c + a2c):
            lines.append(f"| a3c (2 workers) >= a2c, same env steps | {task} | {a3c:.1f} | a2c {a2c:.1f} | "
                         f"{_yes(a3c >= a2c)} |")
    reinforce = _mean(results, "Pendulum-v1", "robopg", "reinforce")
    floor = _mean(results, "Pendulum-v1", "random", "random")
    if not math.isnan(reinforce + floor):
        lines.append(f"| reinforce beats random clearly | Pendulum-v1 | {reinforce:.1f} | random {floor:.1f} | "
                     f"{_yes(reinforce > floor + 0.25 * abs(floor))} (by > 25%) |")
    return lines + [""]


def _yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if any(r["task"] == t for r in results)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    colors = {a.value: f"C{i}" for i, a in enumerate(Algo)}
    styles = {"robopg": "-", "sb3": "--", "sb3-zoo": ":"}
    for ax, task in zip(axes[0], tasks, strict=True):
        for algo in colors:
            for impl, style in styles.items():
                runs = _runs(results, task, impl, algo)
                if not runs:
                    continue
                steps = np.array([p[0] for p in runs[0]["curve"]])
                curves = np.array([[p[1] for p in r["curve"]] for r in runs], dtype=float)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins: no episode ended there
                    mean = np.nanmean(curves, axis=0)
                ax.plot(steps, mean, style, color=colors[algo], label=f"{algo} ({impl})")
        ax.set_title(task)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("training episode return")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plan_runs(args: argparse.Namespace) -> list[tuple[str, TaskSetup, str, Algo | None]]:
    """(task, setup, impl, algo) in the order they run: per task, each algorithm's implementations together."""
    if args.halfcheetah:  # robopg and the peers' documented defaults (the zoo's HalfCheetah entries are not run)
        algos = [a for a in HALFCHEETAH_ALGOS if a.value in args.algos]
        return [(t, s, impl, a) for t, s in HALFCHEETAH.items() for a in algos for impl in args.impls
                if impl in ("robopg", "sb3")]
    plan: list[tuple[str, TaskSetup, str, Algo | None]] = []
    for task in args.tasks:
        if "random" in args.impls:
            plan.append((task, TASKS[task], "random", None))
        for algo in (Algo(a) for a in args.algos):
            plan += [(task, TASKS[task], impl, algo) for impl in args.impls if impl != "random"]
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--algos", nargs="+", default=[a.value for a in Algo], choices=[a.value for a in Algo])
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), help="subset of " + ", ".join(TASKS))
    parser.add_argument("--halfcheetah", action="store_true", help="HalfCheetah-v5 for 1M steps instead: ppo, trpo, a2c, ppo-kl (those of --algos), robopg and "
                        "the peers' defaults (per --impls)")
    parser.add_argument("--episodes", type=int, default=10, help="deterministic evaluation episodes per run")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/bench_algorithms"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    args = parser.parse_args()
    unknown = set(args.tasks) - set(TASKS)
    if unknown:
        parser.error(f"unknown task(s) {sorted(unknown)}; choose from {', '.join(TASKS)}")

    args.docs.mkdir(parents=True, exist_ok=True)
    results_path = args.docs / "bench_algorithms.json"
    results = json.loads(results_path.read_text())["runs"] if results_path.is_file() else []
    results = [r for r in results if "impl" in r]  # runs of the earlier, robopg-only format are dropped
    for task, setup, impl, algo in plan_runs(args):
        for seed in args.seeds:
            if impl == "random":
                result = run_random(task, setup, seed, args.episodes)
            elif impl == "robopg":
                result = run_robopg(task, setup, algo, seed, args.out_dir, args.episodes)
            else:
                result = run_peer(task, setup, algo, impl, seed, args.out_dir, args.episodes)
            if result is None:
                break  # this peer has no such variant on this task
            key = (result["task"], result["impl"], result["algo"], seed)
            results = [r for r in results if (r["task"], r["impl"], r["algo"], r["seed"]) != key]
            results.append(result)
            print(f"{task:20s} {impl:8s} {result['algo']:10s} seed {seed}: deployed return "
                  f"{result['eval_mean_return']:9.1f}, {result['train_seconds']:.0f} s", flush=True)
            results_path.write_text(json.dumps({"machine": platform.node(), "runs": results}, indent=1))
    main_results = [r for r in results if r["task"] in TASKS]
    seeds = sorted({r["seed"] for r in main_results if r["impl"] != "random"})
    command = "python scripts/bench_algorithms.py --seeds " + " ".join(map(str, seeds))
    if main_results:
        extra = [r for r in results if r["task"] in HALFCHEETAH]
        write_table(main_results, extra, args.docs / "bench_algorithms.md", command)
        plot(main_results, args.docs / "bench_algorithms.png")


if __name__ == "__main__":
    main()
