"""`robopg plot`: learning curves of real runs written to a PNG, seeds grouped as mean and band, ADR ranges."""

import csv
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from robopg.config import RunConfig
from robopg.plot import XAxis, figure_pixels, group_runs, load_run, plot_runs
from robopg.runners import Trainer


@pytest.fixture(scope="module")
def runs(tiny_config, tmp_path_factory):
    """Two seeds of the tiny config and one run with another learning rate, 256 steps each."""
    root = tmp_path_factory.mktemp("plot_runs")
    configs = {
        "reach_s3": tiny_config,
        "reach_s4": replace(tiny_config, run=replace(tiny_config.run, seed=4)),
        "fast": replace(tiny_config, ppo=replace(tiny_config.ppo, learning_rate=3e-3)),
    }
    for name, cfg in configs.items():
        Trainer(cfg, root / name, progress=False).train()
    return {name: root / name for name in configs}


def test_plot_of_two_real_runs_writes_a_png_of_the_expected_size_with_both_in_the_legend(runs, tmp_path):
    out = tmp_path / "curves.png"
    done = subprocess.run([sys.executable, "-m", "robopg.cli", "plot", str(runs["reach_s3"]), str(runs["fast"]),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # success and return side by side (640 x 360 px each), one legend row: hand-computed from the constants.
    assert Image.open(out).size == (1280, 400) == figure_pixels(2, 2)
    labels = plot_runs([runs["reach_s3"], runs["fast"]], tmp_path / "again.png")
    assert labels == ["reach_s3 (ppo.learning_rate=0.001)", "fast (ppo.learning_rate=0.003)"]
    assert "reach_s3 (ppo.learning_rate=0.001); fast (ppo.learning_rate=0.003)" in done.stdout


def test_seeds_of_one_config_are_one_group_and_minutes_and_any_column_can_be_plotted(runs, tmp_path):
    out = tmp_path / "seeds.png"
    labels = plot_runs([runs["reach_s3"], runs["reach_s4"], runs["fast"]], out, x=XAxis.MINUTES,
                       metrics=["episode_return", "entropy", "approx_kl"])
    assert labels == ["ppo.learning_rate=0.001 (mean +- std, 2 seeds)", "fast (ppo.learning_rate=0.003)"]
    assert Image.open(out).size == figure_pixels(3, 2) == (1280, 760)
    with pytest.raises(ValueError, match=r"no such metrics.csv column.*Fix: pick from"):
        plot_runs([runs["fast"]], tmp_path / "x.png", metrics=["no_such_column"])


def write_run(path, seed, rows, adr=False):
    """A run directory with a config.json and a metrics.csv of the given rows (dicts of column -> value)."""
    path.mkdir()
    cfg = {"env": {"task": "FetchReachDense-v4"}, "run": {**json.loads(json.dumps(RunConfig().__dict__)), "seed": seed},
           "adr": {"enabled": adr}}
    (path / "config.json").write_text(json.dumps(cfg))
    with (path / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_group_curve_is_the_mean_and_std_over_seeds_row_by_row(tmp_path):
    a = write_run(tmp_path / "a", 0, [{"step": 10, "success_rate": "", "collect_seconds": 30, "update_seconds": 30},
                                      {"step": 20, "success_rate": 0.2, "collect_seconds": 30, "update_seconds": 30},
                                      {"step": 30, "success_rate": 0.6, "collect_seconds": 60, "update_seconds": 0}])
    b = write_run(tmp_path / "b", 1, [{"step": 10, "success_rate": "", "collect_seconds": 90, "update_seconds": 30},
                                      {"step": 20, "success_rate": 0.4, "collect_seconds": 60, "update_seconds": 0}])
    (group,) = group_runs([load_run(a), load_run(b)])
    assert group.label == "a (mean +- std, 2 seeds)"
    x, mean, std = group.curve(XAxis.STEPS, "success_rate")
    # Up to the shorter run (2 rows); row 1 has no value in either run and is dropped.
    np.testing.assert_allclose(x, [20.0])
    np.testing.assert_allclose(mean, [0.3])
    np.testing.assert_allclose(std, [0.1])
    minutes, _, _ = group.curve(XAxis.MINUTES, "success_rate")
    np.testing.assert_allclose(minutes, [(2.0 + 3.0) / 2])  # run a: 1 + 1 minutes, run b: 2 + 1


def test_adr_ranges_that_moved_get_a_panel_each(tmp_path):
    rows = [{"step": s, "success_rate": 0.5, "adr_coverage": c, "adr_object_mass_low": 1 - c / 2,
             "adr_object_mass_high": 1 + c / 2, "adr_action_latency_low": 0, "adr_action_latency_high": 0}
            for s, c in ((100, 0.0), (200, 0.2), (300, 0.4))]
    run = write_run(tmp_path / "adr", 0, rows, adr=True)
    out = tmp_path / "adr.png"
    plot_runs([run], out)
    # success, ADR coverage and object_mass (latency never moved): three panels in two rows.
    assert Image.open(out).size == figure_pixels(3, 1) == (1280, 760)


def test_plot_of_a_directory_without_metrics_names_it(tmp_path):
    done = subprocess.run([sys.executable, "-m", "robopg.cli", "plot", str(tmp_path), "--out", str(tmp_path / "x.png")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and f"{tmp_path} has no metrics.csv" in done.stderr
