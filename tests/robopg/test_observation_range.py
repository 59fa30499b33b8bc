"""The safety layer's observation range on a real policy trained without noise: sensor noise of the size the
shipped reality profiles model never trips it (it did on ~99% of ticks before the range had a floor), while a
disconnected sensor or a value 10x the range still does."""

import tomllib
from pathlib import Path

import numpy as np
import pytest

import envs
from policies_export import Controller
from policies_export.loop import LoopConfig, run_loop
from policies_export.safety import SafetyConfig
from robopg.config import EnvConfig, PolicyConfig, PPOConfig, RunConfig, TrainConfig
from robopg.export import export_policy
from robopg.runners import Trainer
from robopg.sim_robot import SimRobot

TASK = "FetchReachDense-v4"  # its gripper is blocked: gripper_state and gripper_vel are constant in training
NOISE_KEYS = ("observation_noise", "observation_bias")
PROFILES_DIR = Path(envs.__file__).parent / "profiles"


def noisy_profiles() -> dict[str, float]:
    """Every shipped profile that adds observation noise or bias (so a new one is tested too), by name."""
    found = {}
    for path in sorted(PROFILES_DIR.glob("*.toml")):
        spec = tomllib.loads(path.read_text())
        if any(spec.get(key, {}).get("value", 0.0) > 0 for key in NOISE_KEYS):
            found[path.stem] = path
    return found


@pytest.fixture(scope="module")
def clean_policy(tmp_path_factory) -> Path:
    """A FetchReach policy trained with no randomisation at all, so no noise."""
    run_dir = tmp_path_factory.mktemp("clean_run")
    cfg = TrainConfig(
        env=EnvConfig(task=TASK, num_envs=4, randomization="none"),
        policy=PolicyConfig(hidden_sizes=(32, 32)),
        ppo=PPOConfig(rollout_steps=16, epochs=2, minibatches=2),
        run=RunConfig(total_steps=256, seed=3, checkpoint_every=0),
    )
    Trainer(cfg, run_dir, progress=False).train()
    return export_policy(run_dir, run_dir / "clean.onnx").path


@pytest.fixture(scope="module")
def worst_case_profile(tmp_path_factory) -> Path:
    """The largest noise and the largest bias of the shipped profiles, together."""
    worst = {key: 0.0 for key in NOISE_KEYS}
    for path in noisy_profiles().values():
        spec = tomllib.loads(path.read_text())
        for key in NOISE_KEYS:
            worst[key] = max(worst[key], spec.get(key, {}).get("value", 0.0))
    assert worst == {"observation_noise": 0.005, "observation_bias": 0.004}  # what the shipped profiles hold
    path = tmp_path_factory.mktemp("profiles") / "worst_case.toml"
    path.write_text("".join(f'[{key}]\ndistribution = "fixed"\nvalue = {v}\n\n' for key, v in worst.items()))
    return path


def run_under(policy: Path, profile: Path, ticks: int, safety: SafetyConfig | None = None) -> dict:
    robot = SimRobot(TASK, seed=100, profile=profile)
    try:
        return run_loop(Controller.load(policy, safety=safety), robot, LoopConfig(realtime=False, max_ticks=ticks)).summary
    finally:
        robot.close()


@pytest.mark.parametrize("profile", [*noisy_profiles(), "worst_case"])
def test_profile_sized_sensor_noise_never_trips_the_range_check(clean_policy, worst_case_profile, profile):
    path = worst_case_profile if profile == "worst_case" else noisy_profiles()[profile]
    summary = run_under(clean_policy, path, ticks=1000)  # 20 episodes
    counts = summary["interventions"]
    assert counts["obs_out_of_range"] == 0 and summary["fallbacks"] == 0
    # The noise does leave the training range (a constant feature's range is a point): counted, not acted on.
    assert counts["obs_near_miss"] > 900
    # Without the floor (the range of older robopg) the same run sends the safe action nearly every tick.
    strict = run_under(clean_policy, path, ticks=200, safety=SafetyConfig(obs_range_tolerance=0.0))
    assert strict["interventions"]["obs_out_of_range"] > 180


class FaultySensor:
    """SimRobot under the worst-case noise whose reading of one value goes wild every 10th tick."""

    def __init__(self, profile: Path, index: int, wild_value: float) -> None:
        self.sim = SimRobot(TASK, seed=100, profile=profile)
        self.index, self.wild_value, self.reads = index, wild_value, 0

    def read(self) -> np.ndarray:
        obs = self.sim.read().copy()
        self.reads += 1
        if self.reads % 10 == 0:
            obs[self.index] = self.wild_value
        return obs

    def apply(self, action: np.ndarray) -> None:
        self.sim.apply(action)

    def time(self) -> float:
        return self.sim.time()

    def episode_done(self) -> bool:
        return self.sim.episode_done()

    def reset(self) -> None:
        self.sim.reset()


@pytest.mark.parametrize("fault", ["disconnected", "10x_range"])
def test_a_wild_value_still_trips_it(clean_policy, worst_case_profile, fault):
    controller = Controller.load(clean_policy, safety=SafetyConfig(safe_action="zero"))
    safety = controller.safety
    if fault == "disconnected":  # grip_pos x reads 0 (its training range is centred at ~1.34 m)
        index, value = 0, 0.0
    else:  # gripper_state[0], a constant feature: 10x its accepted half-width from the centre
        index = 3
        centre = (safety.obs_low[index] + safety.obs_high[index]) / 2
        value = centre + 10 * (safety.obs_high[index] - centre)
    robot = FaultySensor(worst_case_profile, index, value)
    summary = run_loop(controller, robot, LoopConfig(realtime=False, max_ticks=500)).summary
    assert summary["interventions"]["obs_out_of_range"] == 50  # every faulty tick, nothing else
    assert summary["fallbacks"] == 50
