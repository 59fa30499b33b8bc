"""How an exported push or pick-and-place file fails: each failed episode sorted by what the object did.

    python scripts/manipulation_failures.py runs/RUN/policy.onnx --randomization sim2real
    python scripts/manipulation_failures.py runs/RUN/policy.onnx --profile nominal --episodes 50 --seed 10000

The file runs through the controller runtime on the simulated robot (as `robopg evaluate`, same episode seeds),
and the object's true position and the goal are read from the simulator after every step. A failed episode
(gymnasium-robotics' `is_success` false at the end) is

- lost:   the object was within the success threshold at some step and left it again (slid through, or was
          pushed off by the gripper afterwards);
- short:  it never reached the threshold but ended within twice it (a near miss);
- fell:   neither, and the object ended more than 5 cm below its start height (off the table);
- unmoved: neither, and the object never moved more than 1 cm from where it started (not reached, or not pushed);
- astray: the rest (moved, but never brought near the goal: pushed the wrong way or past it).

Also printed: which randomised values (the episode's reset info) differ most between failed and successful
episodes, a correlation to point `robopg evaluate --ablate` at; and the object's displacement per control step while it is inside the threshold (percentiles), which
is what the staged reward's `settle_distance` acts on (envs/rewards.py). With --json the counts and the per-episode
rows are written to a file.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from envs.latency_input import told_latency
from policies_export.loop import LoopConfig, run_loop
from policies_export.runtime import Controller
from robopg.sim_robot import SimRobot

KINDS = ("lost", "short", "fell", "unmoved", "astray")
FELL = 0.05  # metres below its start height
UNMOVED = 0.01  # metres from its start position


@dataclass(frozen=True)
class Episode:
    index: int
    success: bool
    start: float  # object-goal distance at the episode's start (m)
    closest: float  # the smallest object-goal distance over the episode (m)
    final: float  # at its end (m)
    moved: float  # the object's largest distance from its start position (m)
    drop: float  # its start height minus its final height (m)
    kind: str | None  # None for a success, else one of KINDS
    randomization: dict[str, float] = field(default_factory=dict)  # the episode's sampled values (reset info)


def classify(success: bool, closest: float, final: float, threshold: float, moved: float = 1.0,
             drop: float = 0.0) -> str | None:
    """The failure kind of an episode from its closest and final object-goal distances, how far the object got from
    its start and how far it fell (module docstring)."""
    if success:
        return None
    if closest < threshold:
        return "lost"
    if final < 2 * threshold:
        return "short"
    if drop > FELL:
        return "fell"
    if moved < UNMOVED:
        return "unmoved"
    return "astray"


def record(policy: Path, profile: str | None, randomization: str, episodes: int, seed: int
           ) -> tuple[list[Episode], np.ndarray]:
    """Runs the episodes; returns them and the object's per-step displacements (m) on steps inside the threshold."""
    controller = Controller.load(policy)
    task = controller.metadata.task
    traces: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    sampled: dict[int, dict[str, float]] = {}

    def observe(robot: SimRobot) -> None:
        if robot.episode not in sampled:  # the first call of an episode follows its reset: the reset's info
            sampled[robot.episode] = {k: float(v) for k, v in robot.last_info.get("randomization", {}).items()}
        unwrapped = robot.env.unwrapped
        traces.setdefault(robot.episode, []).append(
            (unwrapped.data.site("object0").xpos.copy(), np.asarray(unwrapped.goal, dtype=np.float64).copy()))

    robot = SimRobot(task, seed=seed, randomization=randomization, profile=profile, observer=observe,
                     latency_input=told_latency(controller.metadata.observation_layout))
    threshold = float(robot.env.unwrapped.distance_threshold)  # gymnasium-robotics' own success radius
    try:
        result = run_loop(controller, robot, LoopConfig(max_episodes=episodes))
    finally:
        robot.close()
    if not result.ok:
        raise SystemExit(f"the loop stopped early: {result.message}")
    rows, inside_steps = [], []
    for i, success in enumerate(robot.episode_successes):
        positions = np.array([p for p, _ in traces[i]])
        distance = np.linalg.norm(positions - np.array([g for _, g in traces[i]]), axis=1)
        steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
        inside_steps.extend(steps[distance[1:] < threshold])
        moved = float(np.linalg.norm(positions - positions[0], axis=1).max())
        drop = float(positions[0, 2] - positions[-1, 2])
        kind = classify(bool(success), float(distance.min()), float(distance[-1]), threshold, moved, drop)
        rows.append(Episode(i, bool(success), float(distance[0]), float(distance.min()), float(distance[-1]),
                            moved, drop, kind, sampled.get(i, {})))
    return rows, np.array(inside_steps)


def attribution(rows: list[Episode]) -> list[tuple[str, float, float, float]]:
    """Which randomised values go with failure: for each value that varied, (name, mean over the failed episodes,
    mean over the successes, their gap in units of the value's std over all episodes), largest gap first. A
    correlation over the episodes, not a cause: ``robopg evaluate --ablate`` removes one range at a time."""
    failed = [r for r in rows if not r.success]
    passed = [r for r in rows if r.success]
    if not failed or not passed:
        return []
    out = []
    for name in rows[0].randomization:
        values = np.array([r.randomization.get(name, np.nan) for r in rows])
        std = float(np.nanstd(values))
        if not std > 1e-9 * max(1.0, float(np.nanmax(np.abs(values)))):  # constant up to rounding: not randomised
            continue
        bad = float(np.nanmean([r.randomization[name] for r in failed]))
        good = float(np.nanmean([r.randomization[name] for r in passed]))
        out.append((name, bad, good, (bad - good) / std))
    return sorted(out, key=lambda item: -abs(item[3]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policy", type=Path, help="an exported .onnx file (robopg export)")
    parser.add_argument("--profile", default=None, help="a shipped reality profile (default: none)")
    parser.add_argument("--randomization", default="none", help="a randomisation spec, e.g. sim2real (default none)")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=10000, help="episode i starts from seed + i (as robopg evaluate)")
    parser.add_argument("--json", type=Path, default=None, help="write the counts and episodes here")
    args = parser.parse_args(argv)
    if not args.policy.is_file():
        parser.error(f"{args.policy} is not a file; export a run first: robopg export RUN --out RUN/policy.onnx")
    rows, inside = record(args.policy, args.profile, args.randomization, args.episodes, args.seed)
    counts = {kind: sum(row.kind == kind for row in rows) for kind in KINDS}
    success = float(np.mean([row.success for row in rows]))
    print(f"{args.policy} (profile {args.profile}, randomization {args.randomization}, {len(rows)} episodes from "
          f"seed {args.seed}): success {success:.2f}; failures {sum(counts.values())}: "
          + ", ".join(f"{kind} {n}" for kind, n in counts.items()))
    for row in rows:
        if row.kind is not None:
            print(f"  episode {row.index:3d} {row.kind:6s} start {row.start:.3f} m, closest {row.closest:.3f}, "
                  f"final {row.final:.3f}, moved {row.moved:.3f}, drop {row.drop:.3f}")
    ranked = attribution(rows)
    if ranked:
        print("randomised values, failed against successful episodes (mean; gap in stds, largest first):")
        for name, bad, good, gap in ranked[:6]:
            print(f"  {name:26s} failed {bad:9.4f}  succeeded {good:9.4f}  gap {gap:+.2f}")
    if len(inside):
        pct = np.percentile(inside, [50, 75, 90, 99])
        print(f"object displacement per step inside the threshold ({len(inside)} steps): p50 / p75 / p90 / p99 "
              + " / ".join(f"{1000 * p:.1f}" for p in pct) + " mm")
    if args.json is not None:
        args.json.write_text(json.dumps({"policy": str(args.policy), "profile": args.profile,
                                         "randomization": args.randomization, "seed": args.seed,
                                         "success": success, "failures": counts,
                                         "episodes": [asdict(row) for row in rows]}, indent=1))


if __name__ == "__main__":
    main()
