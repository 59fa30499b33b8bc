"""`robopg evaluate --profile all | DIR`: one file (or several) under every profile, one table, JSON, heatmap."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import envs
from robopg.evaluate import evaluate_policy
from robopg.export import export_policy


@pytest.fixture(scope="module")
def reach_policy(tiny_run, tmp_path_factory):
    return export_policy(tiny_run, tmp_path_factory.mktemp("matrix") / "reach.onnx").path


def robopg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robopg.cli", *args], capture_output=True, text=True, timeout=300)


def test_profile_all_covers_every_shipped_profile_in_one_table_and_json(reach_policy, tmp_path):
    shipped = sorted(p.stem for p in (Path(envs.__file__).parent / "profiles").glob("*.toml"))
    assert len(shipped) >= 10
    out = tmp_path / "matrix.json"
    done = robopg("evaluate", str(reach_policy), "--profile", "all", "--episodes", "1", "--json", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["profiles"] == shipped and doc["policies"] == [str(reach_policy)]
    (row,) = doc["results"]
    assert [r["profile"] for r in row] == shipped and all(r["episodes"] == 1 for r in row)
    table = done.stdout.splitlines()
    assert "success" in table[1] and "return" in table[1] and "fallbacks" in table[1]
    assert [line.split()[0] for line in table[2:]] == shipped
    # A cell is the single evaluation of that profile with the same seeds.
    cell = row[shipped.index("laggy_noisy")]
    single = evaluate_policy(reach_policy, profile="laggy_noisy", episodes=1)
    assert cell["mean_return"] == single.mean_return and cell["fallbacks"] == single.fallbacks


def test_a_directory_of_user_profiles_is_evaluated_file_by_file(reach_policy, tmp_path):
    profiles = tmp_path / "my_robots"
    profiles.mkdir()
    shutil.copy(Path(envs.__file__).parent / "profiles" / "latency_3.toml", profiles / "arm_b.toml")
    (profiles / "arm_a.toml").write_text('[observation_noise]\ndistribution = "fixed"\nvalue = 0.002\n')
    done = robopg("evaluate", str(reach_policy), "--profile", str(profiles), "--episodes", "1", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["profiles"] == ["arm_a", "arm_b"]
    assert [r["profile"] for r in doc["results"][0]] == [str(profiles / "arm_a.toml"), str(profiles / "arm_b.toml")]

    empty = tmp_path / "empty"
    empty.mkdir()
    failed = robopg("evaluate", str(reach_policy), "--profile", str(empty))
    assert failed.returncode == 2 and "holds no .toml profile files" in failed.stderr


def test_several_files_compare_as_a_heatmap(reach_policy, tmp_path):
    other = tmp_path / "copy.onnx"
    shutil.copy(reach_policy, other)
    png = tmp_path / "matrix.png"
    done = robopg("evaluate", str(reach_policy), str(other), "--profile", "all", "--episodes", "1",
                  "--plot", str(png), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    first, second = doc["results"]
    assert len(first) == len(second) == len(envs.list_profiles())
    # The same file twice: the same episodes, the same scores in each column.
    assert [r["mean_return"] for r in first] == [r["mean_return"] for r in second]
    # 2.5 in of labels + 1 in per profile wide, 1.8 in + 0.55 in per file high, at 100 dpi.
    assert Image.open(png).size == (round((2.5 + len(first)) * 100), round((1.8 + 2 * 0.55) * 100))


def test_json_never_takes_a_policy_file_as_its_path(reach_policy, tmp_path):
    other = tmp_path / "b.onnx"
    shutil.copy(reach_policy, other)
    before = other.read_bytes()
    failed = robopg("evaluate", str(reach_policy), "--json", str(other), "--episodes", "1")
    assert failed.returncode == 2 and "would overwrite a policy file" in failed.stderr
    assert other.read_bytes() == before


def test_evaluate_can_measure_what_the_range_check_and_the_safe_action_cost(reach_policy, tmp_path):
    noisy = tmp_path / "noisy.toml"
    noisy.write_text('[observation_noise]\ndistribution = "fixed"\nvalue = 0.1\n')  # 10 cm: often out of range
    runs = {}
    for name, flags in {"default": [], "zero": ["--safe-action", "zero"], "off": ["--no-obs-range-check"]}.items():
        done = robopg("evaluate", str(reach_policy), "--profile", str(noisy), "--episodes", "2", "--json", *flags)
        assert done.returncode == 0, done.stderr
        runs[name] = json.loads(done.stdout)
    ticks = 2 * 50
    assert 0 < runs["default"]["fallbacks"] < ticks and 0 < runs["zero"]["fallbacks"] < ticks
    # The same episodes; only what replaced the rejected ticks differs: repeating the last delta command drifts.
    assert runs["zero"]["mean_return"] != runs["default"]["mean_return"]
    assert runs["off"]["fallbacks"] == 0 and runs["off"]["interventions"]["obs_out_of_range"] == 0
    failed = robopg("evaluate", str(reach_policy), "--safe-action", "brake")
    assert failed.returncode == 2 and "invalid choice: 'brake'" in failed.stderr


def test_held_at_nominal_drops_one_parameter_per_row_and_keeps_an_object_push_with_its_probability():
    from robopg.evaluate import held_at_nominal

    spec = envs.load_spec("sim2real")
    rows = held_at_nominal(spec)
    assert [name for name, _ in rows] == [n for n in spec.names if n != "object_push_probability"]
    for name, held in rows:
        gone = {name, "object_push_probability"} if name == "object_push" else {name}
        assert set(spec.names) - set(held.names) == gone and f"without {name}" in held.source
        assert all(held[n] == spec[n] for n in held.names)  # the others keep their ranges


def test_ablate_holds_each_parameter_at_nominal_on_the_same_episodes(reach_policy, tmp_path, capsys):
    from robopg.cli import main
    from robopg.evaluate import evaluate_ablation

    (tmp_path / "spec.toml").write_text('[action_latency]\ndistribution = "fixed"\nvalue = 3\n\n'
                                        '[observation_noise]\ndistribution = "fixed"\nvalue = 0.05\n')
    (tmp_path / "noise.toml").write_text('[observation_noise]\ndistribution = "fixed"\nvalue = 0.05\n')
    ablation = evaluate_ablation(reach_policy, tmp_path / "spec.toml", episodes=2, seed=5)
    assert [name for name, _ in ablation.held] == ["action_latency", "observation_noise"]
    no_latency = dict(ablation.held)["action_latency"]
    direct = evaluate_policy(reach_policy, profile=None, randomization=str(tmp_path / "noise.toml"), episodes=2,
                             seed=5)
    assert no_latency.mean_return == direct.mean_return  # the row is the spec without that parameter, same seeds
    assert no_latency.randomization.endswith("without action_latency")
    assert ablation.full.mean_return != no_latency.mean_return  # a 3-step delay and heavy noise change the episodes

    capsys.readouterr()
    assert main(["evaluate", str(reach_policy), "--randomization", str(tmp_path / "spec.toml"), "--ablate",
                 "--episodes", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert sorted(doc["held_at_nominal"]) == ["action_latency", "observation_noise"]
    assert doc["full"]["randomization"].endswith("spec.toml")
    assert main(["evaluate", str(reach_policy), "--ablate"]) == 2
    assert "randomises none" in capsys.readouterr().err
