"""``robopg-controller POLICY.onnx --robot KIND:ARG`` (also ``python -m policies_export``): run a policy file.

    robopg-controller reach.onnx --robot replay:recorded.jsonl --telemetry run.jsonl
    robopg-controller reach.onnx --robot sim:FetchReachDense-v4 --robot-option profile=nominal --episodes 5

Robots: ``replay:LOG`` is built in (replay.py). Every other kind is looked up in the
``policies_export.robots`` entry point group, each entry a factory
``(arg: str, options: dict[str, str]) -> Robot``. robopg registers ``sim`` (robopg/sim_robot.py) there; a
driver package registers its arm the same way (docs/runtime.md). That is why this file never imports robopg
or envs: the simulator is a plug-in, loaded only when asked for.

Exit status: 0 when the loop stopped as asked (limit, end of log, SIGINT/SIGTERM), 1 when it stopped on a
fault (rate not held, robot adapter failing, wiring error), 2 for an unusable policy file or arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from importlib import metadata as dist_metadata

from policies_export.errors import LogFileError, PolicyFileError, notes_to_stderr
from policies_export.loop import LoopConfig, PreciseTiming, run_loop
from policies_export.replay import ReplayRobot
from policies_export.robot import Robot
from policies_export.runtime import Controller
from policies_export.safety import SAFE_ACTIONS, SafetyConfig
from policies_export.telemetry import Telemetry

ROBOT_ENTRY_POINTS = "policies_export.robots"

RobotFactory = Callable[[str, dict[str, str]], Robot]


def _replay_factory(arg: str, options: dict[str, str]) -> Robot:
    if options:
        raise ValueError(f"replay robot takes no --robot-option, got {sorted(options)}")
    return ReplayRobot.from_file(arg)


def _find_factory(kind: str) -> RobotFactory:
    """The factory for ``--robot KIND:ARG``; raises ValueError naming what is installed and how to get
    more."""
    if kind == "replay":
        return _replay_factory
    entries = {ep.name: ep for ep in dist_metadata.entry_points(group=ROBOT_ENTRY_POINTS)}
    if kind not in entries:
        installed = ", ".join(["replay", *sorted(entries)])
        hint = (
            " The simulated robot comes with robopg's training extra: pip install 'robopg[train]'."
            if kind == "sim"
            else " A driver package registers its robot under the entry point group "
            f"'{ROBOT_ENTRY_POINTS}' (docs/runtime.md)."
        )
        raise ValueError(f"no robot kind {kind!r}; installed: {installed}.{hint}")
    try:
        return entries[kind].load()
    except ImportError as err:
        hint = " (install them with: pip install 'robopg[train]')" if kind == "sim" else ""
        raise ValueError(
            f"robot kind {kind!r} ({entries[kind].value}) cannot be loaded: {err}. "
            "Its dependencies are missing"
            f"{hint}; on a robot computer use --robot replay:LOG or your arm's driver"
        ) from None


def make_robot(spec: str, options: dict[str, str]) -> Robot:
    """``"replay:run.jsonl"`` -> ReplayRobot, ``"sim:FetchPush-v4"`` -> robopg's SimRobot, ``"myarm:..."``."""
    kind, sep, arg = spec.partition(":")
    if not sep or not kind:
        raise ValueError(
            f"--robot {spec!r}: expected KIND:ARG, e.g. replay:log.jsonl or sim:FetchReachDense-v4"
        )
    return _find_factory(kind)(arg, options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robopg-controller",
        description="Run an exported policy file in a fixed-rate control loop with the safety layer on.",
    )
    parser.add_argument("policy", help="exported .onnx file (robopg export)")
    parser.add_argument(
        "--robot",
        required=True,
        metavar="KIND:ARG",
        help="replay:LOG (.jsonl/.npz), sim:TASK (needs robopg[train]), or an installed driver",
    )
    parser.add_argument(
        "--robot-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="option for the robot factory, repeatable (sim: seed, profile, randomization)",
    )
    loop = parser.add_argument_group("loop")
    loop.add_argument(
        "--rate", type=float, metavar="HZ", help="ticks per second (default: the file's control rate)"
    )
    loop.add_argument(
        "--no-realtime", action="store_true", help="do not sleep: tick as fast as possible (replay, sim)"
    )
    loop.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    loop.add_argument("--max-ticks", type=int, metavar="N", help="stop after N ticks")
    loop.add_argument("--episodes", type=int, metavar="N", help="stop after N episodes (sim robots)")
    loop.add_argument(
        "--precise-timing",
        action="store_true",
        help="wake 1 ms before each deadline, run 8 warm-up ticks, then spin: ticks start on time and run warm, "
        "for at most spin x rate of one core (2.5%% at 25 Hz)",
    )
    loop.add_argument("--cpu", type=int, metavar="N", help="with --precise-timing: pin the loop to CPU N")
    loop.add_argument(
        "--rt-priority",
        type=int,
        metavar="P",
        help="with --precise-timing: run the loop under SCHED_FIFO at priority P (Linux, needs root or rtprio)",
    )
    safety = parser.add_argument_group("safety layer (on by default)")
    safety.add_argument(
        "--safe-action",
        choices=SAFE_ACTIONS,
        default="hold",
        help="hold: repeat the last action; zero: neutral action (default: hold)",
    )
    safety.add_argument(
        "--max-action-change",
        type=float,
        default=SafetyConfig.max_action_change,
        metavar="F",
        help="rate limit: max change per tick as a fraction of the action range (default: off; set it from "
        "your actuator's limits)",
    )
    safety.add_argument(
        "--no-obs-range-check",
        action="store_true",
        help="do not send the safe action for observations outside the training range",
    )
    safety.add_argument(
        "--obs-range-tolerance",
        type=float,
        metavar="F",
        help="accept observation values up to F x max(1, |centre|) beyond their training range (default: the "
        "file's observation_tolerance, see robopg inspect)",
    )
    safety.add_argument(
        "--max-stale-ticks",
        type=int,
        default=SafetyConfig.max_stale_ticks,
        metavar="N",
        help="ticks the robot timestamp may repeat before the observation is stale (default: %(default)s)",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--telemetry", metavar="PATH", help="write every tick and the summary as JSONL")
    out.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prog = "robopg-controller"
    notes_to_stderr(prog)
    try:
        options = _parse_options(args.robot_option)
        safety = SafetyConfig(
            safe_action=args.safe_action,
            max_action_change=args.max_action_change,
            check_obs_range=not args.no_obs_range_check,
            obs_range_tolerance=args.obs_range_tolerance,
            max_stale_ticks=args.max_stale_ticks,
        )
        if (args.cpu is not None or args.rt_priority is not None) and not args.precise_timing:
            raise ValueError("--cpu and --rt-priority belong to --precise-timing; add it")
        precise = PreciseTiming(cpu=args.cpu, priority=args.rt_priority) if args.precise_timing else None
        config = LoopConfig(
            rate_hz=args.rate,
            realtime=not args.no_realtime,
            max_ticks=args.max_ticks,
            max_duration_s=args.duration,
            max_episodes=args.episodes,
            precise=precise,
        )
        controller = Controller.load(args.policy, safety=safety)
        robot = make_robot(args.robot, options)
    except (PolicyFileError, LogFileError, ValueError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2

    meta = controller.metadata
    rate = "unthrottled" if not config.realtime else f"{config.rate_hz or meta.control_rate_hz:g} Hz"
    print(
        f"{prog}: {args.policy} ({meta.task}, {meta.layout_str()}) on {args.robot} at {rate}; Ctrl-C stops",
        file=sys.stderr,
    )
    try:
        result = run_loop(controller, robot, config, Telemetry(args.telemetry))
    except PermissionError as err:  # --rt-priority without the right to it
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    finally:
        close = getattr(robot, "close", None)
        if close is not None:
            close()

    summary = result.summary
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    if not result.ok:
        print(f"{prog}: stopped: {result.message}", file=sys.stderr)
        return 1
    return 0


def _parse_options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(
                f"--robot-option {pair!r}: expected KEY=VALUE, e.g. --robot-option profile=nominal"
            )
        options[key] = value
    return options


def _print_summary(summary: dict) -> None:
    lat, jit = summary["latency_us"], summary["jitter_us"]
    fired = {kind: n for kind, n in summary["interventions"].items() if n}
    print(f"stopped: {summary['stop_reason']} ({summary['message']})")
    print(
        f"  ticks             {summary['ticks']} in {summary['duration_s']:.3f} s, "
        f"{summary['episodes']} episodes"
    )
    if lat["p50"] is not None:
        print(
            f"  controller        p50 {lat['p50']:.1f} us   p99 {lat['p99']:.1f} us   max {lat['max']:.1f} us"
        )
    if summary["rate_hz"] is not None:
        print(
            f"  rate              {summary['rate_hz']:g} Hz target, "
            f"{summary['achieved_rate_hz']} Hz achieved, "
            f"{summary['deadline_misses']} deadline misses"
        )
        if jit["p50"] is not None:
            print(
                f"  jitter (lateness) p50 {jit['p50']:.1f} us   p99 {jit['p99']:.1f} us   "
                f"max {jit['max']:.1f} us"
            )
    print(f"  interventions     {fired or 'none'} ({summary['fallbacks']} safe actions)")


if __name__ == "__main__":
    raise SystemExit(main())
