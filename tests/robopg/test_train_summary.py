"""The end of `robopg train`: steps, wall time, final success, the files, and commands that work as printed."""

import math
import shlex

from robopg.cli import main
from robopg.logger import read_metrics


def test_train_ends_with_a_summary_whose_commands_run_as_printed(tmp_path, capsys):
    run = tmp_path / "reach run"  # a space: the printed commands must quote paths
    assert main(["train", "--task", "FetchReachDense-v4", "--num-envs", "4", "--rollout-steps", "16", "--epochs", "1",
                 "--total-steps", "384", "--seed", "2", "--no-progress", "--out", str(run)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = read_metrics(run)
    success = [r["success_rate"] for r in rows if math.isfinite(r["success_rate"])][-1]
    assert lines[0].startswith("trained 384 steps in ") and f"final success {success:.2f}, return " in lines[0]
    assert lines[1] == f"files in {run}: final.pt (policy, optimiser, RNG state), config.json, metrics.csv"
    assert lines[2] == f"  TensorBoard: tensorboard --logdir {run / 'tb'}"
    commands = [shlex.split(line) for line in lines[lines.index("next:") + 1:]]
    assert [c[:2] for c in commands] == [["robopg", "export"], ["robopg", "evaluate"], ["robopg", "evaluate"],
                                         ["robopg", "plot"]]
    export, evaluate_all, _video, plot = commands
    assert main(export[1:]) == 0 and (run / "policy.onnx").is_file()
    assert main([*evaluate_all[1:], "--episodes", "1"]) == 0  # a later --episodes overrides the printed one
    assert main(plot[1:]) == 0 and (run / "curves.png").is_file()


def test_update_health_names_a_run_whose_updates_the_kl_stop_cut_short():
    from robopg.summary import update_health

    def row(stopped, kl, clip):
        return {"epochs_stopped_early": stopped, "approx_kl": kl, "clip_fraction": clip}

    early = [row(0.0, 0.01, 0.1)] * 5  # the first half does not count
    late = [row(1.0, 0.12, 0.6), row(1.0, 0.14, 0.5), row(0.0, 0.05, 0.3), row(1.0, 0.13, 0.6), row(1.0, 0.11, 0.5)]
    line = update_health(early + late)
    # 4 of 5 stopped; KL (0.12 + 0.14 + 0.05 + 0.13 + 0.11) / 5 = 0.110; clip (0.6 + 0.5 + 0.3 + 0.6 + 0.5) / 5 = 0.50
    assert line is not None and "ended 80% of the last 5 updates early (mean KL 0.110, clip fraction 0.50)" in line
    assert "--lr-schedule adaptive" in line
    calm = late[:2] + [row(0.0, 0.01, 0.1)] * 3  # 2 of 5 stopped: below half
    assert update_health(early + calm) is None
    assert update_health([{"policy_loss": 0.1}] * 10) is None  # an algorithm without the stop (a2c)
    assert update_health([]) is None
