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
