"""``robopg train | export | evaluate | inspect``: the command-line contract of docs/design.md.

Train flags are generated from the config dataclasses (robopg/config.py), so ``robopg train --help`` lists
every option with its default and meaning. Precedence: defaults < ``--config FILE`` < flags.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from robopg.config import SECTIONS, Algo, TrainConfig, field_help, load_config


def _flag(name: str, prefix: str = "") -> str:
    """--name-with-dashes; a section with a FLAG_PREFIX gets --prefix-name, and its `enabled` field --prefix."""
    if prefix:
        return f"--{prefix}" if name == "enabled" else f"--{prefix}-" + name.replace("_", "-")
    return "--" + name.replace("_", "-")


def _add_config_flags(parser: argparse.ArgumentParser, algo: Algo) -> None:
    """Flags for [env], [policy], [run], [adr] and the selected algorithm's section (their field names are flags)."""
    for section in ("env", "policy", "run", "adr", algo.section):
        section_cls = SECTIONS[section]
        title = f"[{section}] options (config file section [{section}])"
        if section == algo.section:
            title = f"[{section}] options of --algo {algo.value} (other algorithms: robopg train --algo NAME --help)"
        group = parser.add_argument_group(title)
        hints = typing.get_type_hints(section_cls)
        for name, _, help_text, default in field_help(section_cls):
            kind = hints[name]
            shown = default.value if isinstance(default, Enum) else default
            kwargs: dict[str, Any] = {"dest": f"{section}.{name}", "default": None,
                                      "help": f"{help_text} (default: {shown})"}
            if kind is not bool:
                kwargs["metavar"] = name.upper()
            if kind is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif isinstance(kind, type) and issubclass(kind, Enum):
                kwargs["choices"] = [m.value for m in kind]
                kwargs.pop("metavar")
            elif typing.get_origin(kind) is tuple:
                kwargs.update(nargs="+", type=typing.get_args(kind)[0])
            else:
                kwargs["type"] = kind
            group.add_argument(_flag(name, getattr(section_cls, "FLAG_PREFIX", "")), **kwargs)


def selected_algo(argv: list[str]) -> Algo:
    """The algorithm whose options ``robopg train`` should accept: --algo, else the --config file's or the
    --resume run's run.algo, else ppo. Parsed before the full parser, which depends on it."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--algo", choices=[a.value for a in Algo])
    pre.add_argument("--config")
    pre.add_argument("--resume")
    known, _ = pre.parse_known_args(argv)
    if known.algo:
        return Algo(known.algo)
    try:
        if known.config:
            return load_config(known.config).run.algo
        if known.resume:
            saved = json.loads(Path(known.resume, "config.json").read_text())
            return Algo(saved.get("run", {}).get("algo", Algo.PPO))
    except (OSError, ValueError):
        pass  # the full parse and the command report the bad file with their own message
    return Algo.PPO


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in vars(args).items():
        if "." in key and value is not None:
            section, name = key.split(".", 1)
            out.setdefault(section, {})[name] = tuple(value) if isinstance(value, list) else value
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    from robopg.runners import Trainer

    overrides = _overrides(args)
    if args.resume:
        trainer = Trainer.resume(args.resume, overrides, progress=not args.no_progress)
        print(f"resuming {args.resume} at step {trainer.global_step} of {trainer.cfg.run.total_steps}", file=sys.stderr)
    else:
        if args.out is None:
            raise SystemExit("robopg train: --out RUN_DIR is required (or --resume RUN_DIR to continue a run)")
        if Path(args.out, "config.json").exists():
            raise SystemExit(
                f"robopg train: {args.out} already holds a run; continue it with --resume {args.out} "
                "or choose another --out"
            )
        base = load_config(args.config) if args.config else TrainConfig()
        trainer = Trainer(base.replace(overrides), args.out, progress=not args.no_progress)
    metrics = trainer.train()
    print(
        f"trained {trainer.global_step} steps into {trainer.run_dir}: return {metrics.get('episode_return', float('nan')):.3f}, "
        f"success {metrics.get('success_rate', float('nan')):.2f}. Export with: robopg export {trainer.run_dir} --out policy.onnx"
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from robopg.export import export_policy

    report = export_policy(args.run_dir, args.out, num_observations=args.observations)
    print(
        f"wrote {report.path}: parity max |torch - onnxruntime| = {report.parity_max_abs_diff:.2e} "
        f"on {report.num_observations} recorded observations; {report.metadata.task}, "
        f"{report.metadata.training_steps} training steps"
    )
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from robopg.evaluate import evaluate_policy

    profile = None if args.profile == "none" else args.profile
    result = evaluate_policy(args.policy, task=args.task, profile=profile, randomization=args.randomization,
                             episodes=args.episodes, seed=args.seed, rate_hz=args.rate)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        success = "n/a" if result.success_rate is None else f"{result.success_rate:.2f}"
        print(f"{result.task} under profile={result.profile} randomization={result.randomization}, {result.episodes} episodes")
        print(f"  success rate      {success}")
        print(f"  mean return       {result.mean_return:.3f} +- {result.std_return:.3f}")
        print(f"  controller p50    {result.latency_p50_us:.1f} us   p99 {result.latency_p99_us:.1f} us")
        print(f"  safe-action falls {result.fallbacks}")
        others = {k: n for k, n in result.interventions.items() if n}
        print(f"  interventions     {others or 'none'}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from policies_export import Controller

    # Loading through the Controller checks the graph against the metadata too, as the robot would.
    metadata = Controller.load(args.policy).metadata
    if args.json:
        print(json.dumps(json.loads(metadata.to_json()), indent=2))
    else:
        print(f"{args.policy}")
        print(metadata.describe())
    return 0


def build_parser(algo: Algo = Algo.PPO) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robopg",
        description="Train policy-gradient policies on MuJoCo tasks, export one ONNX file, run it via the controller.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,export,evaluate,inspect}")

    train = sub.add_parser(
        "train", help="train a policy into a run directory",
        description="Train a policy. Example: robopg train --task FetchReachDense-v4 --algo ppo --total-steps 50000 "
        "--num-envs 16 --seed 0 --randomization default --out runs/reach. Algorithms: "
        + ", ".join(a.value for a in Algo) + f"; the options below are those of --algo {algo.value}.",
    )
    train.add_argument("--out", help="run directory for config.json, metrics.csv, TensorBoard events, checkpoints")
    train.add_argument("--config", help="TOML or JSON config file with [env], [policy], [run] and algorithm "
                       "tables ([ppo], [ppo_kl], [trpo], [a2c], [a3c], [reinforce])")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_flags(train, algo)
    train.set_defaults(func=_cmd_train)

    export = sub.add_parser(
        "export", help="export a run to one self-describing ONNX file",
        description="Export RUN_DIR's policy (final.pt, else latest.pt) to ONNX; refuses if onnxruntime differs "
        "from torch by more than 1e-5 on recorded observations.",
    )
    export.add_argument("run_dir", type=Path, help="run directory (or a .pt checkpoint)")
    export.add_argument("--out", type=Path, required=True, help="path of the .onnx file to write")
    export.add_argument("--observations", type=int, default=1024, help="observations recorded for the parity check")
    export.set_defaults(func=_cmd_export)

    evaluate = sub.add_parser(
        "evaluate", help="run an exported policy through the controller runtime in simulation",
        description="Run POLICY.onnx through policies_export.Controller (the robot's code path) against the "
        "simulated task.",
    )
    evaluate.add_argument("policy", type=Path, help="exported .onnx file")
    evaluate.add_argument("--task", help="task id (default: the task recorded in the file)")
    evaluate.add_argument("--profile", default="nominal",
                          help="reality profile: a shipped name (envs/profiles/) or a TOML path; 'none' for none")
    evaluate.add_argument("--randomization", default="none", help="randomisation spec: none, default or a TOML path")
    evaluate.add_argument("--episodes", type=int, default=20, help="episodes to run")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    evaluate.add_argument("--rate", type=float, metavar="HZ",
                          help="run the control loop in real time at HZ (default: unthrottled, as fast as the sim)")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    evaluate.set_defaults(func=_cmd_evaluate)

    inspect = sub.add_parser(
        "inspect", help="print an exported policy's metadata (layout, bounds, rate, provenance, ranges)",
        description="Validate POLICY.onnx as the robot would and print what it carries: observation layout and "
        "training ranges, action bounds, control rate, training provenance, parity figure.",
    )
    inspect.add_argument("policy", type=Path, help="exported .onnx file")
    inspect.add_argument("--json", action="store_true", help="print the metadata document as JSON")
    inspect.set_defaults(func=_cmd_inspect)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    algo = selected_algo(argv) if argv[:1] == ["train"] else Algo.PPO
    args = build_parser(algo).parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"robopg {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"robopg {args.command}: {err}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
