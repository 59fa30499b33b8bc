"""Where raw ``mj_step`` time goes on a Fetch model, and what the ceiling would be with settings that could change it.

Steps the task's MuJoCo model (gymnasium-robotics' own env, reset by gymnasium-robotics, random actions through its
``step``, i.e. ``n_substeps`` ``mj_step`` calls per control step) and reads MuJoCo's per-stage timers
(``data.timer``): position (kinematics, inertia, collision broad- and narrow-phase, constraint making),
velocity, actuation, constraint solver, integration. Also: contacts and constraint rows per step, solver
iterations per step, and which geom pairs ever touched.

Variants, each on a fresh copy of the model, interleaved in rounds so the machine's load drifts into all alike:

- ``default``: the model as gymnasium-robotics ships it.
- ``touching_pairs_only``: collisions only between geom pairs that touched in a random-action exploration run
  (``--explore-steps`` control steps), set through contype / conaffinity bits (one bit per pair, ``prune_to``).
  This **changes dynamics** wherever a pruned pair would have touched (a policy
  can drive the arm where random actions did not), so it is not a default; it measures what collision pruning
  could give.
- ``sparse_jacobian``: ``opt.jacobian`` sparse instead of MuJoCo's auto choice (dense below 60 dofs); the
  same dynamics up to floating-point sums.
- ``no_warmstart``: the constraint solver starts from zero instead of the last step's forces (more iterations,
  other forces within the solver's tolerance).

    python scripts/profile_mj_step.py --task FetchPush-v4 --steps 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import time

import mujoco
import numpy as np

import envs

STAGES = {
    "kinematics": mujoco.mjtTimer.mjTIMER_POS_KINEMATICS,
    "inertia": mujoco.mjtTimer.mjTIMER_POS_INERTIA,
    "collision broad": mujoco.mjtTimer.mjTIMER_COL_BROAD,
    "collision narrow": mujoco.mjtTimer.mjTIMER_COL_NARROW,
    "make constraints": mujoco.mjtTimer.mjTIMER_POS_MAKE,
    "project": mujoco.mjtTimer.mjTIMER_POS_PROJECT,
    "velocity": mujoco.mjtTimer.mjTIMER_VELOCITY,
    "actuation": mujoco.mjtTimer.mjTIMER_ACTUATION,
    "constraint solver": mujoco.mjtTimer.mjTIMER_CONSTRAINT,
    "integration": mujoco.mjtTimer.mjTIMER_ADVANCE,
}


def geom_name(m: mujoco.MjModel, g: int) -> str:
    return mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) or (
        f"{mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, m.geom_bodyid[g])}[{g}]")


def run(env, steps: int, seed: int, record_pairs: bool = False) -> dict:
    """``steps`` control steps of random actions; per-``mj_step`` means of the timers and counters."""
    u = env.unwrapped
    d = u.data
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    totals = dict.fromkeys(STAGES, 0.0)
    contacts = rows = iters = 0
    pairs: set[tuple[int, int]] = set()
    calls = 0
    wall = 0.0
    for t in range(steps):
        if t and t % 50 == 0:
            env.reset(seed=seed + t)
        for key in STAGES.values():
            d.timer[key].duration = 0.0
        t0 = time.perf_counter()
        env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        wall += time.perf_counter() - t0
        n = u.n_substeps
        calls += n
        for name, key in STAGES.items():
            totals[name] += d.timer[key].duration
        contacts += d.ncon * n
        rows += d.nefc * n
        iters += int(d.solver_niter[0]) * n
        if record_pairs:
            for c in d.contact[: d.ncon]:
                pairs.add((min(c.geom1, c.geom2), max(c.geom1, c.geom2)))
    return {"us_per_step": {k: 1e6 * v / calls for k, v in totals.items()},
            "env_step_us": 1e6 * wall / steps,
            "contacts": contacts / calls, "rows": rows / calls, "solver_iterations": iters / calls, "pairs": pairs}


def prune_to(model: mujoco.MjModel, pairs: set[tuple[int, int]]) -> None:
    """Keep collisions only between ``pairs`` (at most 32), in place: pair k gets bit k in its first geom's contype
    and its second geom's conaffinity, so two geoms collide exactly when they form one of the pairs (MuJoCo's test:
    contype[a] & conaffinity[b] or contype[b] & conaffinity[a])."""
    if len(pairs) > 32:
        raise ValueError(f"{len(pairs)} touching pairs do not fit 32 contype bits")
    model.geom_contype[:] = 0
    model.geom_conaffinity[:] = 0
    for k, (a, b) in enumerate(sorted(pairs)):
        model.geom_contype[a] |= 1 << k
        model.geom_conaffinity[b] |= 1 << k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="FetchPush-v4")
    parser.add_argument("--steps", type=int, default=2000, help="control steps per measurement")
    parser.add_argument("--explore-steps", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    env = envs.make_env(args.task, seed=0)
    explored = run(env, args.explore_steps, seed=1, record_pairs=True)
    m = env.unwrapped.model
    print(f"{args.task}: {m.ngeom} geoms, {m.nv} dofs, timestep {m.opt.timestep}, {env.unwrapped.n_substeps} "
          f"substeps; pairs that touched in {args.explore_steps} random control steps:")
    for a, b in sorted(explored["pairs"]):
        print(f"  {geom_name(m, a)} - {geom_name(m, b)}")
    variants = {"default": envs.make_env(args.task, seed=0), "touching_pairs_only": envs.make_env(args.task, seed=0),
                "sparse_jacobian": envs.make_env(args.task, seed=0), "no_warmstart": envs.make_env(args.task, seed=0)}
    prune_to(variants["touching_pairs_only"].unwrapped.model, explored["pairs"])
    variants["sparse_jacobian"].unwrapped.model.opt.jacobian = mujoco.mjtJacobian.mjJAC_SPARSE
    variants["no_warmstart"].unwrapped.model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_WARMSTART
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, venv in variants.items():
            results[name].append(run(venv, args.steps, seed=2))
    print(f"per mj_step, mean over {args.rounds} rounds of {args.steps} control steps (us; share of the timed stages):")
    print("| stage | " + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    means = {name: {stage: float(np.mean([r["us_per_step"][stage] for r in rs])) for stage in STAGES}
             for name, rs in results.items()}
    for stage in STAGES:
        cells = [f"{means[n][stage]:.2f} ({means[n][stage] / sum(means[n].values()):.0%})" for n in variants]
        print(f"| {stage} | " + " | ".join(cells) + " |")
    for label, key in (("timed stages, total", None), ("env.step per control step", "env_step_us"),
                       ("contacts", "contacts"), ("constraint rows", "rows"), ("solver iterations", "solver_iterations")):
        cells = []
        for n, rs in results.items():
            value = sum(means[n].values()) if key is None else float(np.mean([r[key] for r in rs]))
            cells.append(f"{value:.1f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    base = np.mean([r["env_step_us"] for r in results["default"]])
    for n, rs in results.items():
        print(f"{n}: env.step {np.mean([r['env_step_us'] for r in rs]) / base:.2f}x the default's time")
    a, b = variants["default"].unwrapped, variants["touching_pairs_only"].unwrapped
    rng = np.random.default_rng(3)
    variants["default"].reset(seed=3)
    variants["touching_pairs_only"].reset(seed=3)
    gap = 0.0
    for _ in range(50):
        action = rng.uniform(-1, 1, 4).astype(np.float32)
        variants["default"].step(action)
        variants["touching_pairs_only"].step(action)
        gap = max(gap, float(np.abs(a.data.qpos - b.data.qpos).max()))
    print(f"touching_pairs_only against default, one 50-step episode of random actions: max |qpos difference| {gap:.2e}")


if __name__ == "__main__":
    main()
