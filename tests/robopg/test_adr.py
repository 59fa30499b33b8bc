"""Automatic domain randomisation on a synthetic success signal: ranges start at nominal, widen where the
policy succeeds, narrow where it fails, and survive a checkpoint round trip."""

import numpy as np
import pytest

from envs.randomization import Distribution, RandomizationSpec, load_spec
from robopg.adr import HIGH, LOW, AutomaticDomainRandomization, Boundary
from robopg.config import AdrConfig

SPEC = RandomizationSpec.from_dict({"source": "test", "parameters": {
    "object_mass": {"distribution": "loguniform", "low": 0.4, "high": 2.5},
    "observation_noise": {"distribution": "uniform", "low": 0.0, "high": 0.01},
    "action_latency": {"distribution": "uniform", "low": 0, "high": 3},
    "observation_bias": {"distribution": "fixed", "value": 0.002},
}})
CFG = AdrConfig(enabled=True, boundary_probability=1.0, buffer_size=10, success_high=0.6, success_low=0.2,
                step_fraction=0.05)


def run_synthetic(adr: AutomaticDomainRandomization, succeeds, episodes: int, seed: int = 0) -> None:
    """Each episode pins a boundary (probability 1) and succeeds with the synthetic task's probability there."""
    rng = np.random.default_rng(seed)
    for _ in range(episodes):
        pin = adr.choose()
        adr.record(pin, float(rng.random() < succeeds(pin.name, adr.value(pin))))


def test_starts_at_nominal_and_only_managed_ranges():
    adr = AutomaticDomainRandomization(SPEC, CFG, num_envs=4, seed=0)
    assert adr.low == adr.high == {"object_mass": 1.0, "observation_noise": 0.0, "action_latency": 0.0}
    # Noise and latency cannot go below 0 = nominal: only their upper boundary moves.
    assert set(adr.boundaries) == {Boundary("object_mass", LOW), Boundary("object_mass", HIGH),
                                   Boundary("observation_noise", HIGH), Boundary("action_latency", HIGH)}
    assert adr.step["object_mass"] == pytest.approx(0.05 * 2.1)
    assert adr.step["action_latency"] == 1.0  # whole control steps
    spec = adr.spec()
    assert spec["observation_bias"].distribution is Distribution.FIXED  # not managed: kept as written
    assert spec["object_mass"].range() == (1.0, 1.0)
    pinned = adr.spec(Boundary("object_mass", HIGH))
    assert pinned["object_mass"].distribution is Distribution.FIXED and pinned["object_mass"].value == 1.0


def test_widens_after_successes_and_narrows_after_failures():
    """Synthetic task: succeeds while the object is lighter than 1.6 and always at any noise level; never with
    latency above 1 step. ADR must find mass's edge, open the noise range fully and keep latency at <= 1."""

    def succeeds(name: str, value: float) -> float:
        if name == "object_mass":
            return 0.95 if value <= 1.6 else 0.0
        if name == "action_latency":
            return 0.95 if value <= 1 else 0.0
        return 0.95

    adr = AutomaticDomainRandomization(SPEC, CFG, num_envs=4, seed=1)
    history = []
    for round_ in range(40):
        run_synthetic(adr, succeeds, 200, seed=round_)
        history.append(dict(adr.high))
    step = adr.step["object_mass"]
    assert adr.low["object_mass"] == pytest.approx(0.4)  # always succeeds below nominal: opens to the limit
    assert adr.high["observation_noise"] == pytest.approx(0.01)
    # The upper mass boundary widened past nominal, then oscillates at the failure edge, never far beyond it.
    assert 1.6 - step <= adr.high["object_mass"] <= 1.6 + step + 1e-9
    assert max(h["object_mass"] for h in history) <= 1.6 + step + 1e-9
    assert adr.high["action_latency"] in (1.0, 2.0)  # widened to 2 at most, then narrowed back
    assert max(h["action_latency"] for h in history) <= 2.0
    assert adr.moves > 10


def test_failures_everywhere_keep_ranges_at_nominal():
    adr = AutomaticDomainRandomization(SPEC, CFG, num_envs=4, seed=2)
    run_synthetic(adr, lambda name, value: 0.0, 2000)
    assert adr.low == adr.high == {"object_mass": 1.0, "observation_noise": 0.0, "action_latency": 0.0}
    # A widened boundary narrows back after failures, but never past nominal.
    adr.high["object_mass"] = 1.5
    run_synthetic(adr, lambda name, value: 0.0, 2000)
    assert adr.high["object_mass"] == pytest.approx(1.0)


def test_middle_success_rate_leaves_the_boundary_alone_and_state_round_trips():
    adr = AutomaticDomainRandomization(SPEC, CFG, num_envs=4, seed=3)
    pin = Boundary("object_mass", HIGH)
    for success in [1.0] * 4 + [0.0] * 6:  # mean 0.4: between success_low and success_high
        adr.record(pin, success)
    assert adr.high["object_mass"] == 1.0 and adr.moves == 0 and adr.buffers[pin] == []
    for _ in range(10):
        adr.record(pin, 1.0)
    assert adr.high["object_mass"] == pytest.approx(1.0 + adr.step["object_mass"])
    adr.record(pin, 1.0)  # one episode in the next buffer

    restored = AutomaticDomainRandomization(SPEC, CFG, num_envs=4, seed=99)
    restored.load_state_dict(adr.state_dict())
    assert restored.high == adr.high and restored.buffers == adr.buffers and restored.moves == adr.moves
    assert [restored.choose() for _ in range(20)] == [adr.choose() for _ in range(20)]
    with pytest.raises(ValueError, match="resume with the randomisation spec"):
        AutomaticDomainRandomization(load_spec("default"), CFG, 4, 0).load_state_dict(adr.state_dict())


def test_spec_without_ranges_is_refused():
    fixed = RandomizationSpec.from_dict({"parameters": {"object_mass": {"distribution": "fixed", "value": 1.2}}})
    with pytest.raises(ValueError, match="no uniform or loguniform range"):
        AutomaticDomainRandomization(fixed, CFG, 4, 0)
