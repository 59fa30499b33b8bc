"""Controller tick latency vs torch eager, and the footprint of the torch-free runtime install.

    python scripts/bench_runtime.py            # trains a quick FetchReachDense-v4 policy first (~20 s)
    python scripts/bench_runtime.py --run-dir RUN --policy POLICY.onnx

One tick, batch 1, numpy observation in -> numpy action out:
- controller: ``Controller.act(obs, stamp=..., read_s=...)``: observation checks, onnxruntime inference and
  the whole safety layer (range, watchdog, clip, rate limit), as the control loop calls it.
- onnxruntime only: ``InferenceSession.run`` on a preallocated buffer (what the checks cost on top).
- torch eager: the same policy from the run's checkpoint, ``policy.deterministic_action`` under no_grad, one
  thread (the controller's session is single-threaded too), including the numpy <-> torch conversions.
Observations are recorded from the task by the trained policy and cycled through, so the range check sees
real data. The three are interleaved in blocks, so drift of this shared machine's load hits all of them.

Footprint: a fresh venv, ``pip install REPO`` without extras, then: size of site-packages, time of
``import policies_export.runtime`` in a fresh interpreter (median of 7), and proof that torch is absent.

Writes docs/bench_runtime.json. Targets (docs/design.md): controller p50 <= 25 us, p99 <= 60 us.
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
from robopg.export import export_policy, load_trained_policy, record_observations

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_P50_US, TARGET_P99_US = 25.0, 60.0


def percentiles(ns: list[int]) -> dict[str, float]:
    us = np.asarray(ns, dtype=np.float64) / 1e3
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
    # record_observations interleaves its 8 envs row by row; regroup them into 8 trajectories, so consecutive
    # ticks see consecutive observations of one episode, as on the robot.
    recorded = record_observations(policy, task, "none", 2048, seed=7)
    observations = (
        recorded.reshape(-1, 8, recorded.shape[1]).transpose(1, 0, 2).reshape(-1, recorded.shape[1])
    )
    dt = 1.0 / controller.metadata.control_rate_hz
    session = controller._session  # the same session, without the checks around it
    buf = np.empty((1, controller.obs_dim), np.float32)
    feed = {"obs": buf}

    stamp = [
        0.0
    ]  # the robot clock: advances every tick, across warm-up and blocks, so the watchdog stays quiet

    def controller_tick(i: int, obs: np.ndarray) -> np.ndarray:
        stamp[0] += dt
        return controller.act(obs, stamp=stamp[0], read_s=0.0)

    def ort_tick(i: int, obs: np.ndarray) -> np.ndarray:
        buf[0] = obs
        return session.run(["action"], feed)[0][0]

    @torch.no_grad()
    def torch_tick(i: int, obs: np.ndarray) -> np.ndarray:
        return policy.deterministic_action(torch.from_numpy(obs)[None])[0].numpy()

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

    # Same answers (the controller's safety layer may rate-limit, so compare the raw inference paths).
    check = observations[:256]
    with torch.no_grad():
        expected = policy.deterministic_action(torch.from_numpy(check)).numpy()
    got = np.stack([ort_tick(0, o).copy() for o in check])
    stats = controller.stats
    return {
        "task": task,
        "policy": str(policy_path),
        "hidden_sizes": list(state["config"]["policy"]["hidden_sizes"]),
        "obs_dim": controller.obs_dim,
        "act_dim": controller.act_dim,
        "ticks_each": len(samples["controller"]),
        "controller": percentiles(samples["controller"]),
        "onnxruntime_only": percentiles(samples["onnxruntime_only"]),
        "torch_eager": percentiles(samples["torch_eager"]),
        "controller_interventions": {k: v for k, v in stats["interventions"].items() if v},
        "max_abs_diff_torch_vs_onnxruntime": float(np.abs(got - expected).max()),
    }


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
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "bench_runtime.json")
    args = parser.parse_args()
    if args.ticks < 10_000:
        parser.error("--ticks must be >= 10,000 for a meaningful p99")

    with tempfile.TemporaryDirectory() as tmp:
        run_dir, policy = args.run_dir, args.policy
        if run_dir is None:
            run_dir = Path(tmp) / "run"
            print(
                f"training: robopg train --task FetchReachDense-v4 --total-steps 20000 --out {run_dir}",
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
                ],
                check=True,
            )
        if policy is None:
            policy = export_policy(run_dir, Path(tmp) / "policy.onnx").path
        print(f"latency: {args.ticks} ticks each, interleaved in blocks of 1000", flush=True)
        latency = bench_latency(policy, run_dir, args.ticks)
    print("footprint: fresh venv, pip install without extras", flush=True)
    footprint = bench_footprint(args.venv)

    ctrl = latency["controller"]
    result = {
        "command": "python scripts/bench_runtime.py" + "".join(f" {a}" for a in sys.argv[1:]),
        "machine": {
            "cpu": _cpu_model(),
            "cpus_visible": os.cpu_count(),
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
        },
        "footprint": footprint,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
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
    print(
        f"footprint   {footprint['site_packages_mb']} MB site-packages "
        f"({footprint['site_packages_mb_without_pip_setuptools']} MB without pip/setuptools), import "
        f"{footprint['import_policies_export_runtime_ms']} ms, torch absent: {footprint['torch_absent']}"
    )
    print(f"wrote {args.out}")


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
