"""``robopg train | presets | export | evaluate | inspect | plot``: the command-line contract of docs/design.md.

Train flags are generated from the config dataclasses (robopg/config.py), so ``robopg train --help`` lists
every option with its default and meaning. Precedence: defaults < ``--preset`` < ``--config FILE`` < flags.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from robopg.video import GLUnavailableError, choose_gl_backend

if typing.TYPE_CHECKING:
    from policies_export.safety import SafetyConfig


def _gl_before_mujoco(argv: list[str]) -> GLUnavailableError | None:
    """`evaluate --video` must choose MuJoCo's GL backend before anything imports MuJoCo, which binds it at import,
    and the config below imports envs (MuJoCo): so it is chosen here, before those imports. The error, if any, is
    reported by main() as the command's one-line error."""
    if argv[:1] != ["evaluate"] or "--video" not in argv:
        return None
    try:
        choose_gl_backend()
    except GLUnavailableError as err:
        return err
    return None


_GL_ERROR = _gl_before_mujoco(sys.argv[1:])

from policies_export.errors import notes_to_stderr  # noqa: E402 - after the GL choice, see above
from policies_export.metadata import DEFAULT_OBSERVATION_TOLERANCE  # noqa: E402
from robopg.config import SECTIONS, Algo, field_help, resolve_config  # noqa: E402
from robopg.field_types import optional_inner  # noqa: E402
from robopg.interrupts import signal_of, sigterm_interrupts  # noqa: E402
from robopg.plot import XAxis  # noqa: E402
from robopg.summary import train_summary  # noqa: E402


def _flag(name: str, prefix: str = "") -> str:
    """--name-with-dashes; a section with a FLAG_PREFIX gets --prefix-name, and its `enabled` field --prefix."""
    if prefix:
        return f"--{prefix}" if name == "enabled" else f"--{prefix}-" + name.replace("_", "-")
    return "--" + name.replace("_", "-")


def _add_config_flags(parser: argparse.ArgumentParser, algo: Algo) -> None:
    """Flags for [env], [policy], [run], [adr], [curriculum] and the selected algorithm's section (their field names are flags)."""
    for section in ("env", "policy", "run", "adr", "curriculum", algo.section):
        section_cls = SECTIONS[section]
        title = f"[{section}] options (config file section [{section}])"
        if section == algo.section:
            title = f"[{section}] options of --algo {algo.value} (other algorithms: robopg train --algo NAME --help)"
        group = parser.add_argument_group(title)
        hints = typing.get_type_hints(section_cls)
        for name, _, help_text, default in field_help(section_cls):
            kind = optional_inner(hints[name]) or hints[name]
            shown = default.value if isinstance(default, Enum) else default
            if default is None:
                shown = "unset"
            if isinstance(default, tuple):
                shown = " ".join(str(x) for x in default)
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
                item = typing.get_args(kind)[0]
                kwargs.update(nargs="+", type=item)
                if issubclass(item, Enum):  # e.g. --logger tensorboard mlflow
                    kwargs["choices"] = list(item)
                    kwargs.pop("metavar")
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
    pre.add_argument("--preset")
    known, _ = pre.parse_known_args(argv)
    if known.algo:
        return Algo(known.algo)
    try:
        if known.config or known.preset:
            return resolve_config(known.preset, known.config, {}).run.algo
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
    from robopg.run_dir import check_new_run, check_steps_left, check_train_arguments

    overrides = _overrides(args)
    check_train_arguments(args.out, args.resume, args.config)
    if not args.resume:
        check_new_run(Path(args.out))
        cfg = resolve_config(overrides.get("run", {}).get("preset"), args.config, overrides)
    if args.nproc_per_node is not None:  # the arguments hold: hand the command on to torchrun
        from robopg.launch import exec_torchrun

        exec_torchrun(args.nproc_per_node, args.argv)
    from robopg.distributed import RankFailure
    from robopg.runners import Trainer

    if args.resume:
        trainer = Trainer.resume(args.resume, overrides, progress=not args.no_progress)
        check_steps_left(trainer.run_dir, trainer.global_step, trainer.cfg.run.total_steps)
        if trainer.world.is_main:
            print(f"resuming {args.resume} at step {trainer.global_step} of {trainer.cfg.run.total_steps}",
                  file=sys.stderr)
    else:
        trainer = Trainer(cfg, args.out, progress=not args.no_progress)
    start, first_step = time.perf_counter(), trainer.global_step
    try:
        trainer.train()
    except RankFailure as err:  # under torchrun: another rank died or hung; the message names it
        print(f"robopg train: error: {err}", file=sys.stderr)
        return 1
    trainer.world.shutdown()
    if trainer.world.is_main:
        print(train_summary(trainer.run_dir, trainer.global_step - first_step, time.perf_counter() - start))
    return 0

def _cmd_export(args: argparse.Namespace) -> int:
    from robopg.export import export_policy

    report = export_policy(args.run_dir, args.out, num_observations=args.observations, obs_tolerance=args.obs_tolerance,
                           average_last=args.average_last)
    averaged = report.metadata.averaged_steps
    print(
        f"wrote {report.path}: parity max |torch - onnxruntime| = {report.parity_max_abs_diff:.2e} "
        f"on {report.parity_on}; {report.metadata.task}, "
        f"{report.metadata.training_steps} training steps"
        + (f"; weights averaged over {len(averaged)} checkpoints from step {averaged[0]}" if averaged else "")
    )
    from robopg.tracking import attach_policy

    for line in attach_policy(args.run_dir, report.path):  # the run's W&B / MLflow record gets the file
        print(line)
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    from robopg.presets import describe, preset_names

    names = preset_names()
    width = max(len(n) for n in names)
    for name in names:
        print(f"{name:<{width}}  {describe(name)}")
    print("\nUse: robopg train --preset NAME --out RUN_DIR (flags and --config override the preset)")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if args.json is not None and args.json.endswith(".onnx"):  # `--json a.onnx b.onnx` took a file as its PATH
        raise ValueError(f"--json {args.json} would overwrite a policy file with JSON. Fix: put the policy files "
                         "before --json, or give --json a .json path")
    many_profiles = args.profile == "all" or Path(args.profile).is_dir()
    video = None
    if args.video is not None:
        if len(args.policy) > 1 or many_profiles:
            raise ValueError("--video records one file under one profile. Fix: pass one POLICY.onnx and one --profile")
        from robopg.video import VideoConfig, choose_gl_backend, parse_size

        video = VideoConfig(args.video, args.video_episodes, *parse_size(args.video_size))
        choose_gl_backend()  # before MuJoCo is imported: it binds its GL backend at import
    if args.ablate:
        return _evaluate_ablation(args, many_profiles, video)
    if len(args.policy) > 1 or many_profiles or args.plot is not None:
        return _evaluate_matrix(args)
    from robopg.evaluate import evaluate_policy

    profile = None if args.profile == "none" else args.profile
    result = evaluate_policy(args.policy[0], task=args.task, profile=profile, randomization=args.randomization,
                             episodes=args.episodes, seed=args.seed, rate_hz=args.rate, safety=_safety(args),
                             video=video)
    if args.json is not None:
        _write_json(args.json, result.to_dict())
    if args.json != "-":
        success = "n/a" if result.success_rate is None else f"{result.success_rate:.2f}"
        print(f"{result.task} under profile={result.profile} randomization={result.randomization}, {result.episodes} episodes")
        print(f"  success rate      {success}")
        print(f"  mean return       {result.mean_return:.3f} +- {result.std_return:.3f}")
        print(f"  controller p50    {result.latency_p50_us:.1f} us   p99 {result.latency_p99_us:.1f} us")
        print(f"  safe-action falls {result.fallbacks}")
        others = {k: n for k, n in result.interventions.items() if n}
        print(f"  interventions     {others or 'none'}")
    if video is not None:
        print(f"wrote {video.path}: {result.video_frames} frames of the first {video.episodes} episodes, "
              f"{video.width}x{video.height}", file=sys.stderr)
    return 0


def _safety(args: argparse.Namespace) -> SafetyConfig:
    """The safety layer of `robopg evaluate`: the robot's defaults unless --safe-action / --no-obs-range-check."""
    from policies_export.safety import SafetyConfig

    return SafetyConfig(safe_action=args.safe_action, check_obs_range=args.obs_range_check)


def _evaluate_ablation(args: argparse.Namespace, many_profiles: bool, video: object) -> int:
    """--ablate: one file under --randomization, then with each randomised parameter held at nominal."""
    from robopg.evaluate import evaluate_ablation

    if len(args.policy) > 1 or many_profiles or video is not None or args.plot is not None or args.rate is not None:
        raise ValueError("--ablate evaluates one file under one randomisation spec. Fix: pass one POLICY.onnx and "
                         "drop --profile all, --video, --plot and --rate")
    profile = None if args.profile in ("none", "nominal") else args.profile
    ablation = evaluate_ablation(args.policy[0], args.randomization, task=args.task, profile=profile,
                                 episodes=args.episodes, seed=args.seed, safety=_safety(args))
    if args.json is not None:
        _write_json(args.json, ablation.to_dict())
    if args.json != "-":
        print(f"{args.episodes} episodes per row, seeds {args.seed}..{args.seed + args.episodes - 1}, "
              f"randomization={args.randomization}" + (f", profile={profile}" if profile else ""))
        print(ablation.table())
    return 0


def _evaluate_matrix(args: argparse.Namespace) -> int:
    """Several files and/or profiles: one table (profiles x files), optionally as JSON and a heatmap."""
    from robopg.evaluate import evaluate_matrix, resolve_profiles

    if args.rate is not None:
        raise ValueError("--rate runs one evaluation in real time. Fix: drop --rate with several files or profiles")
    matrix = evaluate_matrix(args.policy, resolve_profiles(args.profile), task=args.task,
                             randomization=args.randomization, episodes=args.episodes, seed=args.seed,
                             safety=_safety(args))
    if args.json is not None:
        _write_json(args.json, matrix.to_dict())
    if args.json != "-":
        print(f"{args.episodes} episodes per cell, seeds {args.seed}..{args.seed + args.episodes - 1}, "
              f"randomization={args.randomization}")
        print(matrix.table())
    if args.plot is not None:
        from robopg.plot import plot_matrix

        plot_matrix(matrix, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def _write_json(target: str, document: dict) -> None:
    """--json: '-' prints the document, a path writes it there."""
    text = json.dumps(document, indent=2)
    if target == "-":
        print(text)
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(text + "\n")
        print(f"wrote {target}", file=sys.stderr)


def _cmd_plot(args: argparse.Namespace) -> int:
    from robopg.plot import plot_runs

    labels = plot_runs(args.run_dirs, args.out, x=XAxis(args.x), metrics=args.metrics)
    print(f"wrote {args.out}: {len(args.run_dirs)} runs in {len(labels)} groups: {'; '.join(labels)}")
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    """robopg evaluate: one file or a matrix of files x profiles, optionally a video or a heatmap."""
    from policies_export.safety import SAFE_ACTIONS  # the runtime's own list

    evaluate = sub.add_parser(
        "evaluate", help="run exported policies through the controller runtime in simulation",
        description="Run POLICY.onnx through policies_export.Controller (the robot's code path) against the "
        "simulated task. Several files and/or --profile all (or a directory of profile TOMLs) give one table of "
        "success, return and fallbacks per profile (--plot: as a heatmap). --video records the first episodes "
        "(needs the robopg[video] extra and an OpenGL backend: MUJOCO_GL=egl on a GPU, osmesa on a CPU, "
        "Debian/Ubuntu package libosmesa6).",
    )
    evaluate.add_argument("policy", type=Path, nargs="+", help="exported .onnx file(s)")
    evaluate.add_argument("--task", help="task id (default: the task recorded in the file)")
    evaluate.add_argument("--profile", default="nominal",
                          help="reality profile: a shipped name (envs/profiles/), a TOML path, 'none' for none, "
                          "'all' for every shipped profile, or a directory of profile TOMLs")
    evaluate.add_argument("--randomization", default="none", help="randomisation spec: none, default or a TOML path")
    evaluate.add_argument("--episodes", type=int, default=20, help="episodes to run (per profile)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    evaluate.add_argument("--rate", type=float, metavar="HZ",
                          help="run the control loop in real time at HZ (default: unthrottled, as fast as the sim)")
    evaluate.add_argument("--safe-action", choices=SAFE_ACTIONS, default="hold",
                          help="what replaces a rejected tick's action: hold (the last action sent, the runtime's "
                          "default) or zero (the neutral action)")
    evaluate.add_argument("--no-obs-range-check", dest="obs_range_check", action="store_false",
                          help="do not reject observations outside the file's training range (measures what the "
                          "check costs; a robot keeps it on)")
    evaluate.add_argument("--ablate", action="store_true",
                          help="with --randomization SPEC: evaluate the file under SPEC, then once per randomised "
                               "parameter with that one held at nominal (which randomisation costs it success)")
    evaluate.add_argument("--json", nargs="?", const="-", metavar="PATH",
                          help="the result as JSON: printed, or written to PATH")
    evaluate.add_argument("--plot", type=Path, metavar="PNG",
                          help="heatmap of success per file and profile (needs robopg[plot])")
    evaluate.add_argument("--video", type=Path, metavar="OUT",
                          help="record the first episodes to OUT.mp4 or OUT.gif (needs robopg[video] and OpenGL)")
    evaluate.add_argument("--video-episodes", type=int, default=2, metavar="K", help="episodes recorded by --video")
    evaluate.add_argument("--video-size", default="480x480", metavar="WxH", help="frame size of --video")
    evaluate.set_defaults(func=_cmd_evaluate)


def _add_plot_parser(sub: argparse._SubParsersAction) -> None:
    """robopg plot: learning curves of run directories."""
    plot = sub.add_parser(
        "plot", help="learning curves of run directories (seeds of one config as mean and band)",
        description="Overlay metrics.csv columns of RUN_DIRs, one panel per metric; runs that differ only in the "
        "seed are grouped as mean +- std; ADR runs add their ranges over time. Needs the robopg[plot] extra. "
        "Example: robopg plot runs/a runs/b --out curves.png --x minutes",
    )
    plot.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run directories of robopg train")
    plot.add_argument("--out", type=Path, required=True, help="image to write (PNG, SVG, PDF by the suffix)")
    plot.add_argument("--x", choices=[axis.value for axis in XAxis], default=XAxis.STEPS.value,
                      help="x axis: environment steps, or training minutes (collect + update time)")
    plot.add_argument("--metrics", nargs="+", metavar="COLUMN",
                      help="metrics.csv columns to plot (default: success_rate episode_return)")
    plot.set_defaults(func=_cmd_plot)


def build_parser(algo: Algo = Algo.PPO) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robopg",
        description="Train policy-gradient policies on MuJoCo tasks, export one ONNX file, run it via the controller.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,presets,export,evaluate,inspect,plot}")

    train = sub.add_parser(
        "train", help="train a policy into a run directory",
        description="Train a policy. Example: robopg train --task FetchReachDense-v4 --algo ppo --total-steps 50000 "
        "--num-envs 16 --seed 0 --randomization default --out runs/reach. Algorithms: "
        + ", ".join(a.value for a in Algo) + f"; the options below are those of --algo {algo.value}.",
    )
    train.add_argument("--out", help="run directory for config.json, metrics.csv, TensorBoard events, checkpoints")
    train.add_argument("--config", help="TOML or JSON config file with [env], [policy], [run] and algorithm "
                       "tables ([ppo], [ppo_kl], [trpo], [a2c], [a3c], [reinforce]); over --preset, under flags")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--nproc-per-node", type=int, metavar="N",
                       help="train on N ranks of this machine: starts torchrun --standalone --nproc_per_node N with "
                       "this command (--num-envs is per rank; docs/distributed.md has multi-node runs)")
    _add_config_flags(train, algo)
    train.set_defaults(func=_cmd_train)

    presets = sub.add_parser("presets", help="list the shipped training recipes (robopg train --preset NAME)",
                             description="List the shipped presets, one line each.")
    presets.set_defaults(func=_cmd_presets)

    export = sub.add_parser(
        "export", help="export a run to one self-describing ONNX file",
        description="Export RUN_DIR's policy (final.pt, else latest.pt) to ONNX; refuses if onnxruntime differs "
        "from torch by more than 1e-5 on recorded observations.",
    )
    export.add_argument("run_dir", type=Path, help="run directory (or a .pt checkpoint)")
    export.add_argument("--out", type=Path, required=True, help="path of the .onnx file to write")
    export.add_argument("--observations", type=int, default=1024, help="observations recorded for the parity check")
    export.add_argument("--obs-tolerance", type=float, default=DEFAULT_OBSERVATION_TOLERANCE, metavar="F", help="the "
                        "robot accepts observations up to F x max(1, |centre|) beyond their training range (default: %(default)s)")
    export.add_argument("--average-last", type=_positive_int, default=1, metavar="K", help="export the mean of the "
                        "weights of the run's last K checkpoints (the newest and the K-1 periodic ones before it; "
                        "normaliser from the newest): a steadier policy when late updates keep moving it "
                        "(docs/sim2real.md, section 8; default: %(default)s, the newest alone)")
    export.set_defaults(func=_cmd_export)

    _add_evaluate_parser(sub)

    inspect = sub.add_parser(
        "inspect", help="print an exported policy's metadata (layout, bounds, rate, provenance, ranges)",
        description="Validate POLICY.onnx as the robot would and print what it carries: observation layout and "
        "training ranges, action bounds, control rate, training provenance, parity figure.",
    )
    inspect.add_argument("policy", type=Path, help="exported .onnx file")
    inspect.add_argument("--json", action="store_true", help="print the metadata document as JSON")
    inspect.set_defaults(func=_cmd_inspect)

    _add_plot_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    algo = selected_algo(argv) if argv[:1] == ["train"] else Algo.PPO
    args = build_parser(algo).parse_args(argv)
    args.argv = argv  # train --nproc-per-node hands the command on to torchrun
    notes_to_stderr(f"robopg {args.command}")
    try:
        if _GL_ERROR is not None and getattr(args, "video", None) is not None:
            raise _GL_ERROR
        # train: SIGTERM (timeout, systemd, Kubernetes, SLURM) stops it as Ctrl-C does (robopg/interrupts.py).
        with sigterm_interrupts() if args.command == "train" else contextlib.nullcontext():
            return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"robopg {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        signum = signal_of(err)
        # An empty message: the interrupt came before training began (imports, building the task).
        startup = "during start-up, before the first iteration: nothing was written. Run the same command again"
        said = str(err) or f"interrupted ({signal.Signals(signum).name}) " + (
            startup if args.command == "train" else "before it finished")
        print(f"robopg {args.command}: {said}", file=sys.stderr)
        return 128 + signum


if __name__ == "__main__":
    raise SystemExit(main())
