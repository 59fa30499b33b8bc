"""The randomisation curriculum: hand-worked widths, the success gate, and a real run that starts at nominal,
widens, checkpoints and resumes its width."""

import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from envs.randomization import Distribution, Mode, ParameterSpec, RandomizationSpec
from robopg.config import CurriculumConfig, EnvConfig, PolicyConfig, PPOConfig, RunConfig, TrainConfig
from robopg.curriculum import RandomizationRamp, widened
from robopg.logger import read_metrics
from robopg.runners import Trainer


def test_widths_by_hand():
    mass = ParameterSpec("object_mass", Distribution.UNIFORM, Mode.SCALED, low=0.5, high=2.0)
    assert (widened(mass, 0.0).low, widened(mass, 0.0).high) == (1.0, 1.0)
    assert (widened(mass, 0.5).low, widened(mass, 0.5).high) == (0.75, 1.5)
    assert widened(mass, 1.0) == mass
    log_mass = ParameterSpec("object_mass", Distribution.LOGUNIFORM, Mode.SCALED, low=0.25, high=4.0)
    half = widened(log_mass, 0.5)
    assert half.low == pytest.approx(0.5) and half.high == pytest.approx(2.0)  # halfway in log space
    latency = ParameterSpec("action_latency", Distribution.UNIFORM, Mode.ABSOLUTE, low=0, high=3)
    assert (widened(latency, 0.0).high, widened(latency, 0.4).high, widened(latency, 1.0).high) == (0.0, 1.0, 3.0)
    noise = ParameterSpec("observation_noise", Distribution.FIXED, Mode.ABSOLUTE, value=0.004)
    assert widened(noise, 0.25).value == pytest.approx(0.001)
    damping = ParameterSpec("joint_damping", Distribution.NORMAL, Mode.SCALED, mean=1.2, std=0.1)
    w = widened(damping, 0.5)
    assert w.mean == pytest.approx(1.1) and w.std == pytest.approx(0.05)


def test_the_gate_holds_the_width_until_training_succeeds():
    spec = RandomizationSpec((ParameterSpec("object_mass", Distribution.UNIFORM, Mode.SCALED, low=0.5, high=2.0),))
    ramp = RandomizationRamp(spec, CurriculumConfig(enabled=True, ramp_steps=1000, success_gate=0.5))

    class NoEnv:
        num_envs = 0

    ramp.advance(NoEnv(), 100, success_rate=0.4)
    ramp.advance(NoEnv(), 100, success_rate=math.nan)
    assert ramp.alpha == 0.0
    ramp.advance(NoEnv(), 100, success_rate=0.5)
    assert ramp.alpha == pytest.approx(0.1)
    for _ in range(20):
        ramp.advance(NoEnv(), 100, success_rate=0.9)
    assert ramp.alpha == 1.0 and ramp.metrics() == {"curriculum_alpha": 1.0}
    restored = RandomizationRamp(spec, CurriculumConfig(enabled=True, ramp_steps=1000))
    restored.load_state_dict(ramp.state_dict())
    assert restored.alpha == 1.0
    written_before_latency_ramp = RandomizationRamp(spec, CurriculumConfig(enabled=True, ramp_steps=1000))
    written_before_latency_ramp.load_state_dict({"alpha": 0.3})
    assert written_before_latency_ramp.alpha == pytest.approx(0.3)


def test_hold_verdict_carries_the_gate_over_rollouts_without_a_finished_episode():
    spec = RandomizationSpec((ParameterSpec("object_mass", Distribution.UNIFORM, Mode.SCALED, low=0.5, high=2.0),))

    class NoEnv:
        num_envs = 0

    # 32-step rollouts of 50-step episodes that all end together: rollouts 0..24 (800 steps = 16 episodes);
    # an episode ends inside rollout k when some multiple of 50 lies in [32k + 1, 32k + 32], 16 of the 25.
    ends = [any(32 * k < 50 * e <= 32 * (k + 1) for e in range(1, 17)) for k in range(25)]
    assert sum(ends) == 16
    for hold, expected in ((False, 16 * 32), (True, 24 * 32)):  # held: all but rollout 0, before any verdict
        ramp = RandomizationRamp(spec, CurriculumConfig(enabled=True, ramp_steps=10_000, success_gate=0.5,
                                                        hold_verdict=hold))
        for ended in ends:
            ramp.advance(NoEnv(), 32, success_rate=0.9 if ended else math.nan)
        assert ramp.progress == expected
    held = RandomizationRamp(spec, CurriculumConfig(enabled=True, ramp_steps=1000, hold_verdict=True))
    held.advance(NoEnv(), 100, success_rate=0.9)
    held.advance(NoEnv(), 100, success_rate=0.3)  # a failing verdict is held too
    held.advance(NoEnv(), 100, success_rate=math.nan)
    assert held.progress == 100
    restored = RandomizationRamp(spec, CurriculumConfig(enabled=True, ramp_steps=1000, hold_verdict=True))
    held.advance(NoEnv(), 100, success_rate=0.6)
    restored.load_state_dict(held.state_dict())  # the verdict survives a resume
    restored.advance(NoEnv(), 100, success_rate=math.nan)
    assert restored.progress == 300


def test_latency_ramps_on_its_own_schedule():
    spec = RandomizationSpec((
        ParameterSpec("object_mass", Distribution.UNIFORM, Mode.SCALED, low=0.5, high=2.0),
        ParameterSpec("action_latency", Distribution.UNIFORM, Mode.ABSOLUTE, low=0, high=3),
    ))
    cfg = CurriculumConfig(enabled=True, ramp_steps=1000, latency_ramp_steps=500, success_gate=0.5)
    ramp = RandomizationRamp(spec, cfg)

    class NoEnv:
        num_envs = 0

    ramp.advance(NoEnv(), 250, success_rate=0.2)  # gated: nothing moves
    assert (ramp.alpha, ramp.latency_alpha) == (0.0, 0.0)
    ramp.advance(NoEnv(), 250, success_rate=0.6)
    mass, latency = ramp.spec().parameters
    assert (mass.low, mass.high) == (0.875, 1.25)  # width 0.25
    assert (latency.low, latency.high) == (0.0, 2.0)  # width 0.5: 1.5 steps, rounded half to even
    assert ramp.metrics() == {"curriculum_alpha": 0.25, "curriculum_latency_alpha": 0.5}
    ramp.advance(NoEnv(), 500, success_rate=0.6)
    mass, latency = ramp.spec().parameters
    assert latency.high == 3.0 and ramp.latency_alpha == 1.0 and ramp.alpha == 0.75
    resumed = RandomizationRamp(spec, cfg)
    resumed.load_state_dict(ramp.state_dict())
    assert (resumed.alpha, resumed.latency_alpha) == (0.75, 1.0)


def test_latency_start_puts_the_full_delay_in_from_the_first_step():
    spec = RandomizationSpec((
        ParameterSpec("object_mass", Distribution.UNIFORM, Mode.SCALED, low=0.5, high=2.0),
        ParameterSpec("action_latency", Distribution.UNIFORM, Mode.ABSOLUTE, low=0, high=3),
    ))
    ramp = RandomizationRamp(spec, CurriculumConfig(enabled=True, ramp_steps=1000, latency_start=1.0))

    class NoEnv:
        num_envs = 0

    mass, latency = ramp.spec().parameters
    assert (mass.low, mass.high) == (1.0, 1.0) and (latency.low, latency.high) == (0.0, 3.0)
    assert ramp.metrics() == {"curriculum_alpha": 0.0, "curriculum_latency_alpha": 1.0}
    half = RandomizationRamp(spec, CurriculumConfig(enabled=True, ramp_steps=1000, latency_start=0.5))
    half.advance(NoEnv(), 250, success_rate=0.6)
    assert (half.alpha, half.latency_alpha) == (0.25, 0.5)  # the floor holds until the ramp passes it
    half.advance(NoEnv(), 500, success_rate=0.6)
    assert (half.alpha, half.latency_alpha) == (0.75, 0.75)
    with pytest.raises(ValueError, match="latency_start must be in"):
        CurriculumConfig(latency_start=1.5)


def test_a_run_starts_at_nominal_widens_and_resumes_its_width(tmp_path):
    cfg = TrainConfig(
        env=EnvConfig(task="FetchPush-v4", num_envs=4, randomization="default", reward="staged"),
        curriculum=CurriculumConfig(enabled=True, ramp_steps=400, success_gate=0.0),
        policy=PolicyConfig(hidden_sizes=(32, 32)),
        ppo=PPOConfig(rollout_steps=50, epochs=1, minibatches=2),
        run=RunConfig(total_steps=400, seed=0, checkpoint_every=1),
    )
    run_dir = tmp_path / "run"
    trainer = Trainer(cfg, run_dir, progress=False)
    trainer.train()
    rows = read_metrics(run_dir)
    assert [round(r["curriculum_alpha"], 3) for r in rows] == [0.5, 1.0]  # 200 steps of 400 per iteration
    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"histograms": 0})
    events.Reload()
    first = events.Histograms("randomization/object_mass")[0].histogram_value
    assert first.min == first.max == 1.0  # every env began at the nominal mass
    last = events.Histograms("randomization/object_mass")[-1].histogram_value
    assert last.max > last.min  # the episodes after the first widening drew masses around it
    saved = torch.load(run_dir / "final.pt", weights_only=False)["curriculum"]
    assert (saved["alpha"], saved["progress"]) == (1.0, 400.0)
    resumed = Trainer.resume(run_dir, overrides={"run": {"total_steps": 600}}, progress=False)
    assert resumed.curriculum.alpha == 1.0


def test_curriculum_needs_a_spec_and_excludes_adr():
    with pytest.raises(ValueError, match="--curriculum"):
        TrainConfig(env=EnvConfig(randomization="none"), curriculum=CurriculumConfig(enabled=True))
    from robopg.config import AdrConfig

    with pytest.raises(ValueError, match="choose one"):
        TrainConfig(curriculum=CurriculumConfig(enabled=True), adr=AdrConfig(enabled=True))
