"""Controller tick latency, back to back and paced at the robot's rate, and the footprint of the runtime install.

    python scripts/bench_runtime.py            # trains a quick FetchReachDense-v4 policy first (~20 s)
    python scripts/bench_runtime.py --run-dir RUN --policy POLICY.onnx --paced-duration 10 --skip-footprint
    python scripts/bench_runtime.py --recurrent lstm --skip-footprint   # an LSTM-128 policy (state in and out)

A recurrent policy's tick feeds its state with the observation and keeps the next state (the controller inside
``act``; the onnxruntime-only and torch contenders the same way by hand), so the figures are per tick of a running
episode.

Back to back: one tick, batch 1, numpy observation in -> numpy action out:
- controller: ``Controller.act(obs, stamp=..., read_s=...)``: observation checks, onnxruntime inference and
  the whole safety layer (range, watchdog, clip, rate limit), as the control loop calls it.
- onnxruntime only: ``InferenceSession.run`` on a preallocated buffer (what the checks cost on top).
- torch eager: the same policy from the run's checkpoint, ``policy.deterministic_action`` under no_grad, one
  thread (the controller's session is single-threaded too), including the numpy <-> torch conversions.
Observations are recorded from the task by the trained policy and cycled through, so the range check sees
real data. The three are interleaved in blocks, so drift of this shared machine's load hits all of them.

Paced: the way a robot runs it, ``run_loop`` with the real monotonic clock against the simulated robot
(``SimRobot``: MuJoCo steps between ticks, as the robot's other work does), at the file's control rate (25 Hz for
Fetch), 100 Hz and 500 Hz; each rate with the loop's default timing (sleep until the deadline) and with
``LoopConfig(precise=PreciseTiming())`` (sleep until 1 ms before, warm-up inference, spin), interleaved in
rounds. Per run: ``Controller.act`` latency and start-of-tick lateness p50 / p99 / max, deadline misses, and the
process's CPU time over wall time (% of one core: simulator included; the difference between the two timings at
one rate is the option's cost).

Footprint: a fresh venv, ``pip install REPO`` without extras, then: size of site-packages, time of
``import policies_export.runtime`` in a fresh interpreter (median of 7), and proof that torch is absent.

Writes docs/bench_runtime.json and the tables of README.md's runtime section (between its bench_runtime markers). Targets
(docs/design.md): back to back p50 <= 25 us, p99 <= 60 us; paced at the file's rate with the option on,
``Controller.act`` p99 <= 60 us and lateness p99 <= 200 us. The figures follow the machine's load: the JSON records
the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from policies_export import Controller
from policies_export.loop import LoopConfig, PreciseTiming, run_loop
from policies_export.telemetry import Telemetry
from robopg.config import EnvConfig
from robopg.export import export_policy, load_trained_policy, record_observations
from robopg.recurrent_export import record_sequences
from robopg.sim_robot import SimRobot

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
README_MARKERS = ("<!-- bench_runtime -->", "<!-- /bench_runtime -->")
TARGET_P50_US, TARGET_P99_US = 25.0, 60.0
TARGET_PACED_P99_US, TARGET_LATENESS_P99_US = 60.0, 200.0
TIMING_NAMES = {
    "sleep": "sleep (default)",
    "precise": "precise: 8 warm-up ticks + 1 ms spin",
    "precise_rt": "precise + SCHED_FIFO",
}


def percentiles(ns: list[int]) -> dict[str, float]:
    return percentiles_us(np.asarray(ns, dtype=np.float64) / 1e3)


def percentiles_us(values_us: np.ndarray | list[float]) -> dict[str, float]:
    us = np.asarray(values_us, dtype=np.float64)
    p50, p99 = np.percentile(us, [50, 99])
    return {
        "p50_us": round(float(p50), 2),
        "p99_us": round(float(p99), 2),
        "max_us": round(float(us.max()), 2),
    }


def bench_latency(policy_path: Path, run_dir: Path, ticks: int, block: int = 1000) -> dict:
    torch.set_num_threads(1)
    policy, state = load_trained_policy(run_dir)
    controller = Controller.load(policy_path)
    task = controller.metadata.task
    # 8 envs recorded side by side (a recurrent policy stepping its state); regroup them into 8 trajectories, so
    # consecutive ticks see consecutive observations of one episode, as on the robot.
    env_cfg = EnvConfig(task=task, randomization="none")
    if controller.recurrence is None:
        recorded = record_observations(policy, env_cfg, 2048, seed=7).reshape(-1, 8, controller.input_dim)
    else:
        recorded = record_sequences(policy, env_cfg, seed=7, num_envs=8, min_steps=256, min_boundaries=1).inputs
    observations = recorded.transpose(1, 0, 2).reshape(-1, recorded.shape[2])
    dt = 1.0 / controller.metadata.control_rate_hz
    session = controller._session  # the same session, without the checks around it
    buf = np.empty((1, controller.obs_dim), np.float32)
    feed = {"obs": buf}
    # A recurrent policy's tick also feeds its state and keeps the next one (the controller does it inside act).
    rec = controller.recurrence
    state_in, state_out = (rec.inputs, rec.outputs) if rec is not None else ((), ())
    feed.update(zip(state_in, controller.initial_state(1), strict=True))
    output_names = ["action", *state_out]
    torch_state = [policy.actor.memory.zero_state(1) if rec is not None else ()]

    stamp = [
        0.0
    ]  # the robot clock: advances every tick, across warm-up and blocks, so the watchdog stays quiet

    def controller_tick(i: int, obs: np.ndarray) -> np.ndarray:
        stamp[0] += dt
        return controller.act(obs, stamp=stamp[0], read_s=0.0)

    def ort_tick(i: int, obs: np.ndarray) -> np.ndarray:
        buf[0] = obs
        out = session.run(output_names, feed)
        feed.update(zip(state_in, out[1:], strict=True))
        return out[0][0]

    @torch.no_grad()
    def torch_tick(i: int, obs: np.ndarray) -> np.ndarray:
        if rec is None:
            return policy.deterministic_action(torch.from_numpy(obs)[None])[0].numpy()
        action, torch_state[0] = policy.deterministic_step(torch.from_numpy(obs)[None], torch_state[0])
        return action[0].numpy()

    runners = {"controller": controller_tick, "onnxruntime_only": ort_tick, "torch_eager": torch_tick}
    samples: dict[str, list[int]] = {name: [] for name in runners}
    clock = time.perf_counter_ns
    n_obs = len(observations)
    for tick in runners.values():  # warm-up: first calls allocate buffers; not what a steady loop pays
        for i in range(500):
            tick(i, observations[i % n_obs])
    done = 0
    while done < ticks:
        for name, tick in runners.items():
            out = samples[name]
            for i in range(done, done + block):
                obs = observations[i % n_obs]
                t0 = clock()
                tick(i, obs)
                out.append(clock() - t0)
        done += block

    # Same answers (the controller's safety layer may rate-limit, so compare the raw inference paths), from a
    # fresh state for a recurrent policy: 256 consecutive ticks of one trajectory.
    check = observations[:256]
    feed.update(zip(state_in, controller.initial_state(1), strict=True))
    torch_state[0] = policy.actor.memory.zero_state(1) if rec is not None else ()
    expected = np.stack([torch_tick(0, o) for o in check])
    got = np.stack([ort_tick(0, o).copy() for o in check])
    stats = controller.stats
    return {
        "task": task,
        "policy": str(policy_path),
        "hidden_sizes": list(state["config"]["policy"]["hidden_sizes"]),
        "recurrence": None if rec is None else rec.to_dict(),
        "obs_dim": controller.obs_dim,
        "act_dim": controller.act_dim,
        "ticks_each": len(samples["controller"]),
        "controller": percentiles(samples["controller"]),
        "onnxruntime_only": percentiles(samples["onnxruntime_only"]),
        "torch_eager": percentiles(samples["torch_eager"]),
        "controller_interventions": {k: v for k, v in stats["interventions"].items() if v},
        "max_abs_diff_torch_vs_onnxruntime": float(np.abs(got - expected).max()),
    }


def bench_paced(
    policy_path: Path, rates: list[float], duration_s: float, rounds: int, cpu: int | None, priority: int | None
) -> list[dict]:
    """Each rate x timing, ``rounds`` runs of duration_s / rounds each, interleaved; samples merged. Timings: the
    default sleep, PreciseTiming(), and with a priority PreciseTiming(cpu, priority)."""
    modes = {"sleep": None, "precise": PreciseTiming()}
    if priority is not None or cpu is not None:
        modes["precise_rt"] = PreciseTiming(cpu=cpu, priority=priority)
    samples = {(rate, mode): {"latency": [], "lateness": [], "misses": 0, "ticks": 0, "cpu_s": 0.0, "wall_s": 0.0}
               for rate in rates for mode in modes}
    task = Controller.load(policy_path).metadata.task
    for _ in range(rounds):
        for rate in rates:
            for mode, precise in modes.items():
                controller = Controller.load(policy_path)
                robot = SimRobot(task, seed=0)
                telemetry = Telemetry()
                config = LoopConfig(rate_hz=rate, max_duration_s=duration_s / rounds, precise=precise)
                cpu0, wall0 = time.process_time(), time.perf_counter()
                result = run_loop(controller, robot, config, telemetry)
                cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
                robot.close()
                got = samples[(rate, mode)]
                got["latency"] += telemetry.latencies_us().tolist()
                got["lateness"] += telemetry.lateness_us().tolist()
                got["misses"] += result.summary["deadline_misses"]
                got["ticks"] += result.summary["ticks"]
                got["cpu_s"] += cpu_s
                got["wall_s"] += wall_s
    rows = []
    for (rate, mode), got in samples.items():
        rows.append({
            "rate_hz": rate,
            "timing": mode,
            "ticks": got["ticks"],
            "controller_act": percentiles_us(got["latency"]),
            "lateness": percentiles_us(got["lateness"]),
            "deadline_misses": got["misses"],
            "cpu_percent_of_one_core": round(100 * got["cpu_s"] / got["wall_s"], 1),
        })
    return rows


def readme_tables(latency: dict, rows: list[dict], load: tuple[float, float]) -> str:
    """The README's block: the policy, back-to-back latencies, the paced table, the machine's load."""
    rec = latency["recurrence"]
    memory = "feed-forward" if rec is None else f"{rec['kind'].upper()} {rec['layers']} x {rec['hidden_size']}"
    lines = [f"Policy: {latency['task']}, {memory}, MLP {' x '.join(map(str, latency['hidden_sizes']))}, "
             f"obs {latency['obs_dim']}, actions {latency['act_dim']}.", "",
             "| back to back, per tick, numpy in -> numpy out | p50 | p99 | max |", "|---|---|---|---|"]
    for key, name in (
        ("controller", "`Controller.act` (checks + onnxruntime + safety layer)"),
        ("onnxruntime_only", "onnxruntime `session.run` alone"),
        ("torch_eager", "torch eager, same policy, 1 thread"),
    ):
        got = latency[key]
        lines.append(f"| {name} | {got['p50_us']:.1f} us | {got['p99_us']:.1f} us | {got['max_us']:.0f} us |")
    lines += [
        "",
        "| paced: rate | timing | ticks | `Controller.act` p50 / p99 / max | start-of-tick lateness p50 / p99 / max | "
        "misses | CPU (one core) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        act, late = row["controller_act"], row["lateness"]
        timing = TIMING_NAMES[row["timing"]]
        lines.append(
            f"| {row['rate_hz']:g} Hz | {timing} | {row['ticks']} | {act['p50_us']:.1f} / {act['p99_us']:.1f} / "
            f"{act['max_us']:.0f} us | {late['p50_us']:.0f} / {late['p99_us']:.0f} / {late['max_us']:.0f} us | "
            f"{row['deadline_misses']} | {row['cpu_percent_of_one_core']:.1f}% |"
        )
    lines.append("")
    lines.append(f"Load average (1 min) {load[0]:.1f} at the start, {load[1]:.1f} at the end of the run.")
    return "\n".join(lines)


def write_readme_table(table: str, markers: tuple[str, str] = README_MARKERS) -> None:
    text = README.read_text()
    start, end = markers
    if start not in text or end not in text:
        raise SystemExit(f"{README} lacks the markers {start} ... {end}; add them where the paced table goes")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    README.write_text(f"{head}{start}\n{table}\n{end}{tail}")


def bench_footprint(venv: Path) -> dict:
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", str(REPO_ROOT)], check=True, stderr=subprocess.DEVNULL
    )
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )

    def size_mb(paths: list[Path]) -> float:
        total = 0
        for path in paths:
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            total += sum(f.stat().st_size for f in files)
        return round(total / 2**20, 1)

    entries = list(site.iterdir())
    tooling = [
        e
        for e in entries
        if e.name.split("-")[0].split(".")[0].lower() in {"pip", "setuptools", "_distutils_hack", "distutils"}
    ]
    by_package = {}
    for name in ("numpy", "onnxruntime", "policies_export", "robopg", "envs"):
        by_package[name] = size_mb(
            [e for e in entries if e.name == name or e.name.startswith(f"{name}.libs")]
        )
    import_code = (
        "import time, sys; t = time.perf_counter(); import policies_export.runtime; "
        "print(time.perf_counter() - t); "
        "print(sorted(m for m in ('torch', 'mujoco', 'gymnasium', 'envs', 'robopg') if m in sys.modules))"
    )
    import_s, loaded = [], None
    for _ in range(7):
        out = subprocess.run(
            [str(py), "-c", import_code],
            check=True,
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),
        ).stdout.split("\n")
        import_s.append(float(out[0]))
        loaded = out[1]
    torch_spec = subprocess.run(
        [str(py), "-c", "import importlib.util; print(importlib.util.find_spec('torch'))"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    ).stdout.strip()
    freeze = subprocess.run(
        [str(py), "-m", "pip", "freeze", "--all"], check=True, capture_output=True, text=True
    ).stdout.split()
    return {
        "command": f"python -m venv {venv} && {venv}/bin/pip install {REPO_ROOT}",
        "site_packages_mb": size_mb(entries),
        "site_packages_mb_without_pip_setuptools": size_mb([e for e in entries if e not in tooling]),
        "by_package_mb": by_package,
        "installed": freeze,
        "import_policies_export_runtime_ms": round(float(np.median(import_s)) * 1e3, 1),
        "training_stack_modules_loaded_by_import": json.loads(loaded.replace("'", '"')),
        "torch_find_spec": torch_spec,
        "torch_absent": torch_spec == "None" and not any(p.lower().startswith("torch") for p in freeze),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run-dir", type=Path, help="trained run (default: train FetchReachDense-v4 for 20k steps)"
    )
    parser.add_argument("--policy", type=Path, help="its exported .onnx (default: export --run-dir)")
    parser.add_argument("--ticks", type=int, default=20_000, help="timed ticks per contender (>= 10,000)")
    parser.add_argument(
        "--venv",
        type=Path,
        default=Path(tempfile.gettempdir()) / "robopg_runtime_venv",
        help="throw-away venv for the footprint (replaced)",
    )
    parser.add_argument("--recurrent", choices=["lstm", "gru"],
                        help="train the quick policy with --recurrent KIND --rnn-hidden-size 128 instead (writes "
                        "docs/bench_runtime_KIND.json and README.md's bench_runtime_KIND tables)")
    parser.add_argument("--out", type=Path, help="default: docs/bench_runtime.json (docs/bench_runtime_KIND.json)")
    parser.add_argument("--rates", type=float, nargs="+", help="paced rates in Hz (default: the file's, 100, 500)")
    parser.add_argument("--paced-duration", type=float, default=60.0,
                        help="seconds per rate and timing, split over --paced-rounds (default: %(default)s)")
    parser.add_argument("--paced-rounds", type=int, default=3, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--pin-cpu", type=int, help="also run PreciseTiming(cpu=N, priority=...) (default: no)")
    parser.add_argument("--rt-priority", type=int,
                        help="also run PreciseTiming(cpu=..., priority=N): SCHED_FIFO, needs root (default: no)")
    parser.add_argument("--skip-footprint", action="store_true", help="do not build the throw-away venv")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite README.md's paced table")
    args = parser.parse_args()
    if args.ticks < 10_000:
        parser.error("--ticks must be >= 10,000 for a meaningful p99")
    suffix = f"_{args.recurrent}" if args.recurrent else ""
    args.out = args.out or REPO_ROOT / "docs" / f"bench_runtime{suffix}.json"
    markers = (f"<!-- bench_runtime{suffix} -->", f"<!-- /bench_runtime{suffix} -->")
    recurrent_flags = ["--recurrent", args.recurrent, "--rnn-hidden-size", "128"] if args.recurrent else []

    with tempfile.TemporaryDirectory() as tmp:
        run_dir, policy = args.run_dir, args.policy
        if run_dir is None:
            run_dir = Path(tmp) / "run"
            print(
                f"training: robopg train --task FetchReachDense-v4 --total-steps 20000 {' '.join(recurrent_flags)} "
                f"--out {run_dir}",
                flush=True,
            )
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "robopg.cli",
                    "train",
                    "--task",
                    "FetchReachDense-v4",
                    "--total-steps",
                    "20000",
                    "--out",
                    str(run_dir),
                    "--no-progress",
                    *recurrent_flags,
                ],
                check=True,
            )
        if policy is None:
            policy = export_policy(run_dir, Path(tmp) / "policy.onnx").path
        load_start = os.getloadavg()[0]
        print(f"latency: {args.ticks} ticks each, interleaved in blocks of 1000", flush=True)
        latency = bench_latency(policy, run_dir, args.ticks)
        rates = args.rates or [Controller.load(policy).metadata.control_rate_hz, 100.0, 500.0]
        print(f"paced: {rates} Hz x (sleep, precise), {args.paced_duration:g} s each in {args.paced_rounds} rounds",
              flush=True)
        paced = bench_paced(policy, rates, args.paced_duration, args.paced_rounds, args.pin_cpu, args.rt_priority)
        load = (load_start, os.getloadavg()[0])
    footprint = None
    if not args.skip_footprint:
        print("footprint: fresh venv, pip install without extras", flush=True)
        footprint = bench_footprint(args.venv)

    ctrl = latency["controller"]
    result = {
        "command": "python scripts/bench_runtime.py" + "".join(f" {a}" for a in sys.argv[1:]),
        "machine": {
            "cpu": _cpu_model(),
            "cpus_visible": os.cpu_count(),
            "load_avg_1m_at_start": load[0],
            "load_avg_1m_at_end": os.getloadavg()[0],
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "torch": torch.__version__,
        },
        "latency": latency,
        "speedup_p50_controller_vs_torch": round(latency["torch_eager"]["p50_us"] / ctrl["p50_us"], 2),
        "targets": {
            "p50_us": TARGET_P50_US,
            "p99_us": TARGET_P99_US,
            "p50_met": ctrl["p50_us"] <= TARGET_P50_US,
            "p99_met": ctrl["p99_us"] <= TARGET_P99_US,
            "paced_p99_us": TARGET_PACED_P99_US,
            "paced_lateness_p99_us": TARGET_LATENESS_P99_US,
            "paced_met_at_file_rate_with_precise": _paced_met(paced, rates[0]),
        },
        "paced": paced,
        "footprint": footprint,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    table = readme_tables(latency, paced, load)
    if not args.no_readme:
        write_readme_table(table, markers)
    print(table)
    tor, ort_only = latency["torch_eager"], latency["onnxruntime_only"]
    print(
        f"controller  p50 {ctrl['p50_us']:.1f} us  p99 {ctrl['p99_us']:.1f} us  max {ctrl['max_us']:.0f} us "
        f"(targets {TARGET_P50_US:g} / {TARGET_P99_US:g})"
    )
    print(
        f"ort only    p50 {ort_only['p50_us']:.1f} us  p99 {ort_only['p99_us']:.1f} us  "
        f"max {ort_only['max_us']:.0f} us"
    )
    print(f"torch eager p50 {tor['p50_us']:.1f} us  p99 {tor['p99_us']:.1f} us  max {tor['max_us']:.0f} us")
    if footprint is not None:
        print(
            f"footprint   {footprint['site_packages_mb']} MB site-packages "
            f"({footprint['site_packages_mb_without_pip_setuptools']} MB without pip/setuptools), import "
            f"{footprint['import_policies_export_runtime_ms']} ms, torch absent: {footprint['torch_absent']}"
        )
    print(f"wrote {args.out}" + ("" if args.no_readme else f" and the tables in {README}"))


def _paced_met(paced: list[dict], rate: float) -> dict[str, bool]:
    """Per precise timing: both paced targets met at ``rate``."""
    return {
        row["timing"]: row["controller_act"]["p99_us"] <= TARGET_PACED_P99_US
        and row["lateness"]["p99_us"] <= TARGET_LATENESS_P99_US
        for row in paced
        if row["rate_hz"] == rate and row["timing"] != "sleep"
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
