"""Runs never dead-end (robopg/run_dir.py), in real `robopg train` processes: errors during start-up leave no
directory, a directory without a checkpoint is reused by --out and refused by --resume with the command that
restarts it, and kill -9 between checkpoints followed by --resume leaves every step once in metrics.csv and in
TensorBoard."""

import csv
import shutil
import signal
import subprocess
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from train_processes import BATCH, SMALL, robopg, rows_written, start, wait_for_rows

from robopg.checkpoint import load_checkpoint
from robopg.cli import main
from robopg.logger import read_metrics


def one_line_error(result: subprocess.CompletedProcess | tuple[int, str]) -> str:
    """The stderr of a refused command: exit 2, one line, no traceback."""
    code, err = (result.returncode, result.stderr) if isinstance(result, subprocess.CompletedProcess) else result
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def tensorboard_steps(run: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a scalar as TensorBoard shows it (its reader purges what a resumed run rewound)."""
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_errors_during_start_up_leave_no_directory_so_the_fixed_command_runs(tmp_path, capsys):
    run = tmp_path / "run"
    too_many = main(["train", *SMALL, "--total-steps", "64", "--minibatches", "64", "--out", str(run)])
    assert too_many == 2 and "minibatches = 64 is more than the 32 samples" in capsys.readouterr().err
    assert not run.exists()
    bad_spec = tmp_path / "spec.toml"
    bad_spec.write_text("[object_mass]\ndistribution = 'uniform'\nlow = 2\nhigh = 1\n")  # low > high
    assert main(["train", *SMALL, "--total-steps", "64", "--randomization", str(bad_spec), "--out", str(run)]) == 2
    assert "spec.toml" in capsys.readouterr().err and not run.exists()
    # The batched backend runs Fetch tasks only: refused where the runner builds its environments.
    assert main(["train", *SMALL, "--task", "Pendulum-v1", "--backend", "batched", "--total-steps", "64",
                 "--out", str(run)]) == 2
    assert "Traceback" not in capsys.readouterr().err and not run.exists()

    assert main(["train", *SMALL, "--total-steps", "64", "--out", str(run)]) == 0  # the fixed command
    assert [r["step"] for r in read_metrics(run)] == [32, 64]


def test_a_run_killed_before_its_first_checkpoint_is_restarted_by_out_and_not_resumed(tmp_path, capsys):
    run = tmp_path / "run"
    proc = start("train", *SMALL, "--total-steps", "100000", "--checkpoint-every", "1000", "--out", str(run))
    wait_for_rows(proc, run, 3)
    proc.kill()  # SIGKILL: nothing runs after it
    proc.wait()
    assert not (run / "latest.pt").exists() and (run / "config.json").is_file() and rows_written(run) >= 3

    message = one_line_error((main(["train", "--resume", str(run), "--no-progress"]), capsys.readouterr().err))
    restart = f"robopg train --config {run / 'config.json'} --out {run}"
    assert "holds no checkpoint" in message and message.endswith(f"Fix: start it again with {restart}")

    # The command it names, as printed (plus a shorter budget), starts the run afresh in the same directory.
    again = robopg(*restart.split()[1:], "--total-steps", "96", "--no-progress")
    assert again.returncode == 0, again.stderr
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == [32, 64, 96] and [r["iteration"] for r in rows] == [1, 2, 3]
    assert [s for s, _ in tensorboard_steps(run, "policy_loss")] == [32, 64, 96]  # no event of the killed run
    assert load_checkpoint(run / "final.pt")["global_step"] == 96


def test_out_into_a_run_with_a_checkpoint_exits_2_naming_resume(tiny_run):
    message = one_line_error(robopg("train", *SMALL, "--out", str(tiny_run)))
    assert f"{tiny_run} already holds a run. Fix: continue it with --resume {tiny_run}" in message


def test_kill_9_between_checkpoints_then_resume_keeps_every_step_once(tmp_path):
    run = tmp_path / "run"
    proc = start("train", *SMALL, "--total-steps", "100000", "--checkpoint-every", "10", "--out", str(run))
    wait_for_rows(proc, run, 13)
    proc.send_signal(signal.SIGSTOP)  # freeze it to read what it wrote, then kill -9
    killed_rows = list(csv.reader((run / "metrics.csv").open()))
    proc.kill()
    proc.wait()
    checkpoint = load_checkpoint(run / "latest.pt")
    kept = checkpoint["iteration"]
    assert kept % 10 == 0 and len(killed_rows) - 1 > kept  # rows were written after the last checkpoint
    assert checkpoint["global_step"] == kept * BATCH

    total = (kept + 5) * BATCH
    resumed = robopg("train", "--resume", str(run), "--total-steps", str(total), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    rows = list(csv.reader((run / "metrics.csv").open()))
    assert rows[: kept + 1] == killed_rows[: kept + 1]  # the checkpoint's rows are kept as they were
    steps = [int(row[0]) for row in rows[1:]]
    assert steps == [BATCH * i for i in range(1, kept + 6)]  # each step once, in order
    iteration = rows[0].index("iteration")
    assert [float(row[iteration]) for row in rows[1:]] == list(range(1, kept + 6))

    # TensorBoard shows the same steps, with the resumed run's values after the checkpoint.
    loss = rows[0].index("policy_loss")
    board = tensorboard_steps(run, "policy_loss")
    assert [s for s, _ in board] == steps
    for (_, value), row in zip(board, rows[1:], strict=True):
        assert abs(value - float(row[loss])) <= 1e-6 * max(1.0, abs(value))


def test_export_of_what_is_not_a_run_says_so_in_one_line_and_exits_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not a run\n")
    (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    expected = {"empty": "holds no checkpoint", "notes": "holds no checkpoint",
                "junk.pt": "cannot be read: truncated, or not a robopg checkpoint"}
    for name, message in expected.items():
        assert main(["export", str(tmp_path / name), "--out", str(tmp_path / "policy.onnx")]) == 2
        err = capsys.readouterr().err
        assert one_line_error((2, err)).startswith(f"robopg export: error: {tmp_path / name}") and message in err
    assert not (tmp_path / "policy.onnx").exists()


def test_a_resume_that_would_change_the_run_or_train_nothing_is_refused_by_name(tiny_run, tmp_path, capsys):
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))  # FetchReachDense-v4, ppo, 32-32, at step 256 of 256
    before = (run / "metrics.csv").read_bytes()
    may_change = ("A resume may change only --total-steps, --checkpoint-every, --torch-threads, --update-threads, "
                  "--logger, --project, --wandb-mode, --mlflow-tracking-uri. Fix: drop the other flags, or start a new run with --out NEW_DIR")
    refused = {
        ("--algo", "a2c"): f"--resume {run} cannot change run.algo (ppo -> a2c): a checkpoint continues the run "
                           f"that wrote it. {may_change}",
        ("--task", "FetchPush-v4", "--hidden-sizes", "16", "16"): "cannot change env.task (FetchReachDense-v4 -> "
                                                                  "FetchPush-v4), policy.hidden_sizes (32 32 -> 16 16)",
        ("--total-steps", "128"): f"{run} is at step 256 and its total_steps is 128: nothing is left to train. Fix: "
                                  "pass --total-steps with more than 256 steps",
        (): "is at step 256 and its total_steps is 256: nothing is left to train",
        ("--out", str(tmp_path / "elsewhere")): f"--resume continues {run} in place, so --out {tmp_path / 'elsewhere'} "
                                                "would be ignored. Fix: drop --out",
        ("--config", str(run / "config.json")): "so --config",
    }
    for flags, message in refused.items():
        assert main(["train", "--resume", str(run), "--no-progress", *flags]) == 2, flags
        assert message in one_line_error((2, capsys.readouterr().err)), flags
    assert (run / "metrics.csv").read_bytes() == before and not (tmp_path / "elsewhere").exists()
    assert main(["train", "--no-progress"]) == 2
    assert "--out RUN_DIR is required" in capsys.readouterr().err

    # What a resume may change: the budget and the bookkeeping.
    assert main(["train", "--resume", str(run), "--out", str(run), "--total-steps", "320", "--checkpoint-every", "3",
                 "--update-threads", "2", "--no-progress"]) == 0
    assert [r["step"] for r in read_metrics(run)][-2:] == [256, 320]
