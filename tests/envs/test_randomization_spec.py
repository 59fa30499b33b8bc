import json

import numpy as np
import pytest

from envs.randomization import (
    PARAMETERS,
    SPECS_DIR,
    Kind,
    Mode,
    RandomizationSpec,
    allowed_modes,
    check_pairs,
    list_profiles,
    load_profile,
    load_spec,
    parse_spec_file,
)


def write(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            '[object_mas]\ndistribution = "fixed"\nvalue = 1.0\n',
            ["object_mas", "Did you mean 'object_mass'", "known"],
        ),
        (
            '[object_mass]\ndistribution = "unifrom"\nlow = 1\nhigh = 2\n',
            ["object_mass", "unifrom", "uniform"],
        ),
        ('[object_mass]\ndistribution = "uniform"\nlow = 1\nhgih = 2\n', ["object_mass", "hgih", "'high'"]),
        (
            '[object_mass]\ndistribution = "uniform"\nlow = 1\n',
            ["object_mass", "missing field 'high'", "add high"],
        ),
        ("[object_mass]\nlow = 1\nhigh = 2\n", ["object_mass", "'distribution'", "add distribution"]),
        ('[object_mass]\ndistribution = "uniform"\nlow = 1.3\nhigh = 0.7\n', ["object_mass", "low", "swap"]),
        (
            '[joint_damping]\ndistribution = "normal"\nmean = 1\nstd = -0.1\n',
            ["joint_damping", "negative std", ">= 0"],
        ),
        (
            '[object_mass]\ndistribution = "loguniform"\nlow = 0\nhigh = 2\n',
            ["object_mass", "loguniform", "low > 0"],
        ),
        (
            '[action_noise]\ndistribution = "fixed"\nvalue = 0.1\nmode = "scaled"\n',
            ["action_noise", "absolute"],
        ),
        ('[action_latency]\ndistribution = "uniform"\nlow = 0\nhigh = 1.5\n', ["action_latency", "integer"]),
        ('[object_mass]\ndistribution = "fixed"\nvalue = "heavy"\n', ["object_mass", "finite number"]),
        ('[object_mass]\ndistribution = "fixed"\nvalue = -1\n', ["object_mass", "value >= 0"]),
        (
            '[object_mass]\ndistribution = "fixed"\nvalue = 1.0\nmode = "relative"\n',
            ["object_mass", "absolute"],
        ),
        ('[object_mass]\ndistribution = "fixed"\nvalue = \n', ["invalid TOML", "line 3"]),
        (
            '[object_push_probability]\ndistribution = "uniform"\nlow = 0\nhigh = 1.5\n',
            ["object_push_probability", "high = 1.5 > 1", "high <= 1"],
        ),
        (
            '[object_push_probability]\ndistribution = "fixed"\nvalue = 2\n',
            ["object_push_probability", "probability", "value <= 1"],
        ),
        (
            '[object_size]\ndistribution = "fixed"\nvalue = 0.03\nmode = "absolute"\n',
            ["object_size", 'mode = "scaled"'],
        ),
        (
            '[gravity_perturbation]\ndistribution = "fixed"\nvalue = 0.1\nmode = "scaled"\n',
            ["gravity_perturbation", "perturbation parameter", "absolute"],
        ),
    ],
)
def test_validation_errors_name_parameter_and_fix(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as err:
        load_spec(path)
    message = str(err.value)
    assert str(path) in message
    assert "Fix" in message
    for part in expected:
        assert part in message, message


def test_missing_file_and_unknown_profile(tmp_path):
    with pytest.raises(ValueError, match=r"'none', a shipped spec \(default, sim2real\) or an existing file"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(ValueError, match="Did you mean 'nominal'"):
        load_profile("nominl")


def test_shipped_specs_load_by_name():
    assert load_spec("sim2real") == load_spec(SPECS_DIR / "sim2real.toml")
    assert "action_latency" in load_spec("sim2real").names


def test_none_and_default():
    assert len(load_spec("none")) == 0
    spec = load_spec("default")
    assert set(spec.names) == set(PARAMETERS)
    assert spec["object_mass"].mode is Mode.SCALED
    assert spec["observation_noise"].mode is Mode.ABSOLUTE
    json.dumps(spec.to_dict())
    assert RandomizationSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_default_samples_fall_in_ranges_and_uniform_mean():
    spec = load_spec("default")
    rng = np.random.default_rng(0)
    draws = [spec.sample(rng) for _ in range(2000)]
    for name, (lo, hi) in spec.ranges().items():
        values = np.array([d[name] for d in draws])
        assert values.min() >= lo and values.max() <= hi, name
        p = spec[name]
        if p.distribution == "uniform" and p.kind is not Kind.LATENCY:
            width = hi - lo
            assert abs(values.mean() - (lo + hi) / 2) < 0.03 * width, name
            assert values.min() < lo + 0.05 * width and values.max() > hi - 0.05 * width, name
    latency = np.array([d["action_latency"] for d in draws])
    assert set(np.unique(latency)) == {0.0, 1.0}  # integers, both ends inclusive
    assert abs(latency.mean() - 0.5) < 0.05


def test_sampling_reproducible_from_seed():
    spec = load_spec("default")

    def sequence(seed):
        rng = np.random.default_rng(seed)
        return [spec.sample(rng) for _ in range(5)]

    assert sequence(1) == sequence(1)
    assert sequence(1) != sequence(2)


def test_other_distributions(tmp_path):
    path = write(
        tmp_path,
        '[object_mass]\ndistribution = "loguniform"\nlow = 0.5\nhigh = 2.0\n'
        '[joint_damping]\ndistribution = "normal"\nmean = 1.0\nstd = 0.5\nlow = 0.9\nhigh = 1.1\n'
        '[action_noise]\ndistribution = "normal"\nmean = 0.0\nstd = 0.1\n'
        '[action_latency]\ndistribution = "fixed"\nvalue = 3\n',
    )
    spec = load_spec(path)
    rng = np.random.default_rng(0)
    draws = [spec.sample(rng) for _ in range(2000)]
    mass = np.array([d["object_mass"] for d in draws])
    assert 0.5 <= mass.min() and mass.max() <= 2.0
    assert abs(np.log(mass).mean()) < 0.05  # log-uniform: symmetric in log space around log(1)
    damping = np.array([d["joint_damping"] for d in draws])
    assert damping.min() >= 0.9 and damping.max() <= 1.1
    assert min(d["action_noise"] for d in draws) >= 0.0  # a std never goes negative
    assert {d["action_latency"] for d in draws} == {3.0}


def test_profiles_load_and_merge(tmp_path):
    assert {"nominal", "heavy_slippery", "laggy_noisy"} <= set(list_profiles())
    for name in list_profiles():
        assert len(load_profile(name)) > 0
    merged = load_spec("default").merged_with(load_profile("heavy_slippery"))
    assert merged["object_mass"].distribution == "fixed" and merged["object_mass"].value == 1.5
    assert merged["gripper_gain"] == load_spec("default")["gripper_gain"]
    assert merged.names == load_spec("default").names
    user = write(tmp_path, '[table_friction]\ndistribution = "fixed"\nvalue = 0.3\n', "my_robot.toml")
    assert load_profile(user)["table_friction"].value == 0.3
    assert parse_spec_file(user).source == str(user)


def test_every_parameter_has_a_default_range_and_samples_in_it_reproducibly():
    """Fails for a parameter added to PARAMETERS without a range in default.toml, nominal.toml and sim2real.toml,
    or whose draws leave their range."""
    spec = load_spec("default")
    sim2real = load_spec(SPECS_DIR / "sim2real.toml")
    nominal = load_profile("nominal")
    for name in PARAMETERS:
        assert name in spec and name in sim2real and name in nominal, name
        single = RandomizationSpec((spec[name],), "one")
        draws = [single.sample(np.random.default_rng(seed))[name] for seed in range(300)]
        again = [single.sample(np.random.default_rng(seed))[name] for seed in range(300)]
        assert draws == again, name
        lo, hi = spec[name].range()
        assert lo <= min(draws) and max(draws) <= hi, name
        if lo < hi:
            assert len(set(draws)) > 1, name
        assert spec[name].mode in allowed_modes(name), name


def test_new_parameter_modes_and_limits(tmp_path):
    spec = load_spec("default")
    assert spec["object_damping"].mode is Mode.ABSOLUTE  # nominal damping may be 0
    assert spec["object_size"].mode is Mode.SCALED and spec["link_mass"].mode is Mode.SCALED
    for name in ("gravity_perturbation", "timestep_jitter", "object_push", "object_push_probability"):
        assert spec[name].kind is Kind.PERTURBATION and spec[name].mode is Mode.ABSOLUTE
    assert load_profile("nominal")["object_damping"].mode is Mode.SCALED
    # A normal draw of a probability is clipped to [0, 1].
    path = write(tmp_path, '[object_push_probability]\ndistribution = "normal"\nmean = 0.9\nstd = 1.0\n')
    p = load_spec(path)["object_push_probability"]
    assert p.range() == (0.0, 1.0)
    draws = [p.sample(np.random.default_rng(i)) for i in range(200)]
    assert min(draws) >= 0.0 and max(draws) == 1.0


def test_push_needs_its_probability(tmp_path):
    alone = load_spec(write(tmp_path, '[object_push]\ndistribution = "fixed"\nvalue = 0.1\n'))
    with pytest.raises(ValueError, match=r"has \[object_push\] but not \[object_push_probability\].*Fix: add"):
        check_pairs(alone)
    check_pairs(load_spec("default"))


def test_shipped_profiles_and_sim2real_coverage():
    assert {
        "nominal", "heavy_slippery", "laggy_noisy", "object_heavy", "object_light", "friction_low",
        "friction_high", "latency_2", "latency_3", "sensor_noise_x2",
    } <= set(list_profiles())
    assert load_profile("object_heavy")["object_mass"].value == 2.0
    assert load_profile("object_light")["object_mass"].value == 0.5
    assert load_profile("sensor_noise_x2")["observation_noise"].value == 2 * load_spec("default").ranges()[
        "observation_noise"
    ][1]
    # sim2real covers the new profiles' values, except the documented out-of-distribution sensor bias.
    sim2real = load_spec(SPECS_DIR / "sim2real.toml").ranges()
    not_covered = {("sensor_noise_x2", "observation_bias")}
    for name in ("object_heavy", "object_light", "friction_low", "friction_high", "latency_2", "latency_3",
                 "sensor_noise_x2"):
        for param in load_profile(name).parameters:
            lo, hi = sim2real[param.name]
            covered = lo <= param.value <= hi
            assert covered != ((name, param.name) in not_covered), (name, param.name)
