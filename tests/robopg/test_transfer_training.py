"""Training for transfer through real runs: the asymmetric critic's privileged inputs, automatic domain
randomisation inside the trainer, and the randomisation histograms in TensorBoard."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import envs
from policies_export import Controller
from robopg.advantages import gae
from robopg.config import AdrConfig, EnvConfig, PolicyConfig, PPOConfig, RunConfig, TrainConfig
from robopg.evaluate import evaluate_policy
from robopg.export import export_policy, load_trained_policy, to_onnx_bytes
from robopg.facts import TaskFacts
from robopg.logger import read_metrics
from robopg.modules import build_policy
from robopg.runners import Trainer
from robopg.sim_robot import SimRobot

PUSH = EnvConfig(task="FetchPush-v4", num_envs=4, randomization="default", reward="shaped")
SMALL = dict(
    policy=PolicyConfig(hidden_sizes=(32, 32)),
    ppo=PPOConfig(rollout_steps=50, epochs=2, minibatches=2),
    run=RunConfig(total_steps=400, seed=4, checkpoint_every=1),
)


@pytest.fixture(scope="module")
def asymmetric_run(tmp_path_factory) -> Path:
    cfg = TrainConfig(env=PUSH, **{**SMALL, "policy": PolicyConfig(hidden_sizes=(32, 32), asymmetric_critic=True)})
    run_dir = tmp_path_factory.mktemp("asymmetric")
    Trainer(cfg, run_dir, progress=False).train()
    return run_dir


def test_asymmetric_critic_reads_clean_state_and_true_parameters(asymmetric_run):
    policy, state = load_trained_policy(asymmetric_run)
    privileged = state["task"]["privileged"]
    obs_dim = envs.describe_task("FetchPush-v4").layout.dim
    # Every parameter of the default spec that FetchPush has a target for (gripper_gain is PickAndPlace's only).
    assert "object_mass" in privileged and "action_latency" in privileged and "gripper_gain" not in privileged
    assert policy.actor[0].in_features == obs_dim
    assert policy.critic[0].in_features == obs_dim + len(privileged)
    # The critic's normaliser has seen the privileged inputs: object_mass's column varies around 1.
    column = obs_dim + privileged.index("object_mass")
    assert 0.85 < float(policy.critic_normalizer.mean[column]) < 1.15
    assert float(policy.critic_normalizer.var[column]) > 1e-3


def test_the_critic_can_see_the_commands_still_in_the_latency_pipeline(one_rollout):
    env_cfg = EnvConfig(task="FetchPush-v4", num_envs=3, randomization="default", action_history=2)
    cfg = TrainConfig(env=env_cfg, **{**SMALL, "policy": PolicyConfig(
        hidden_sizes=(32, 32), asymmetric_critic=True, critic_action_history=True)})
    facts = TaskFacts.for_run(cfg)
    policy = build_policy(cfg, facts)
    obs_dim, act_dim = facts.obs_dim, facts.act_dim
    assert policy.obs_dim == obs_dim + 2 * act_dim  # the actor: one observation and 2 past actions
    assert policy.critic_obs_dim == obs_dim + len(facts.privileged) + 2 * act_dim
    storage = one_rollout(policy, env_cfg, steps=60, num_envs=3, seed=5, sample_seed=6, success_key=None)
    # The critic's last columns are the actor's action history, step for step (a time-out at step 50 included).
    torch.testing.assert_close(storage.critic_obs[..., -2 * act_dim:], storage.obs[..., -2 * act_dim:],
                               rtol=0, atol=0)
    # ... which holds the actions sent: the newest is the previous step's (clipped) action.
    sent = policy.to_env_action(storage.actions[:-1])
    torch.testing.assert_close(storage.obs[1:50, :, -act_dim:], sent[:49], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="--asymmetric-critic"):
        PolicyConfig(critic_action_history=True)
    with pytest.raises(ValueError, match="--action-history 3"):
        TrainConfig(env=PUSH, policy=PolicyConfig(asymmetric_critic=True, critic_action_history=True))


def test_latency_aligned_advantages_credit_each_action_where_the_env_executes_it(one_rollout, tmp_path):
    spec = tmp_path / "lat2.toml"
    spec.write_text('[action_latency]\ndistribution = "fixed"\nvalue = 2\n')
    env_cfg = EnvConfig(task="FetchPush-v4", num_envs=2, randomization=str(spec), action_history=2)
    policy_cfg = PolicyConfig(hidden_sizes=(32, 32), asymmetric_critic=True, latency_aligned_advantages=True)
    cfg = TrainConfig(env=env_cfg, **{**SMALL, "policy": policy_cfg})
    facts = TaskFacts.for_run(cfg)
    column = facts.latency_column(cfg)
    assert column == facts.obs_dim + facts.privileged.index("action_latency")
    policy = build_policy(cfg, facts)
    storage = one_rollout(policy, env_cfg, steps=60, num_envs=2, seed=5, sample_seed=6, success_key=None,
                          latency_column=column)
    assert storage.critic_obs[..., column].unique().tolist() == [2.0]  # the env's latency, every step
    storage.compute_gae(0.9, 0.9)
    plain = gae(storage.rewards, storage.values, storage.next_values(), storage.terminated, storage.dones, 0.9, 0.9)[0]
    assert storage.dones[49].tolist() == [1.0, 1.0]  # FetchPush's time limit: the episodes end at step 49
    executed = [t for t in range(58) if t not in (48, 49)]  # 48, 49 would execute after the end; 58, 59 next rollout
    torch.testing.assert_close(storage.advantages[executed], plain[[t + 2 for t in executed]], rtol=0, atol=0)
    assert storage.advantages[[48, 49, 58, 59]].abs().sum() == 0
    torch.testing.assert_close(storage.returns, plain + storage.values)  # the critic's targets stay as collected
    with pytest.raises(ValueError, match="drop --critic-action-history"):
        PolicyConfig(asymmetric_critic=True, critic_action_history=True, latency_aligned_advantages=True)
    with pytest.raises(ValueError, match="pass --asymmetric-critic"):
        PolicyConfig(latency_aligned_advantages=True)
    with pytest.raises(ValueError, match="reinforce uses Monte-Carlo returns"):
        TrainConfig(env=env_cfg, policy=policy_cfg, run=RunConfig(algo="reinforce"))
    masses = tmp_path / "mass.toml"
    masses.write_text('[object_mass]\ndistribution = "uniform"\nlow = 0.8\nhigh = 1.2\n')
    no_latency = TrainConfig(env=EnvConfig(task="FetchPush-v4", randomization=str(masses)), policy=policy_cfg)
    with pytest.raises(ValueError, match="varies no action_latency on FetchPush-v4. Fix: add an .action_latency."):
        TaskFacts.for_run(no_latency).latency_column(no_latency)


def test_privileged_inputs_never_reach_the_exported_graph(asymmetric_run, tmp_path):
    policy, state = load_trained_policy(asymmetric_run)
    critic_dim = policy.critic_obs_dim
    graph = onnx.load_from_string(to_onnx_bytes(policy)).graph
    (graph_input,) = graph.input
    assert [d.dim_value for d in graph_input.type.tensor_type.shape.dim][1] == policy.obs_dim
    for init in graph.initializer:
        assert critic_dim not in init.dims, f"{init.name} {list(init.dims)} has the critic's input width"
    # Changing everything the critic owns leaves the exported graph byte-identical.
    with torch.no_grad():
        for p in policy.critic.parameters():
            p.add_(torch.randn_like(p))
        policy.critic_normalizer.mean.add_(5.0)
    assert onnx.load_from_string(to_onnx_bytes(policy)).graph.SerializeToString() == graph.SerializeToString()
    # The exported file runs on what the robot senses alone.
    out = tmp_path / "actor.onnx"
    export_policy(asymmetric_run, out)
    controller = Controller.load(out)
    obs, _ = envs.make_env("FetchPush-v4", seed=0).reset(seed=0)
    expected = policy.deterministic_action(torch.from_numpy(obs[None])).detach().numpy()[0]
    np.testing.assert_allclose(controller.act(obs), expected, atol=1e-5)


def test_randomisation_values_are_tensorboard_histograms(asymmetric_run):
    events = EventAccumulator(str(asymmetric_run / "tb"), size_guidance={"histograms": 0})
    events.Reload()
    tags = events.Tags()["histograms"]
    assert "randomization/object_mass" in tags and "randomization/action_latency" in tags
    first = events.Histograms("randomization/object_mass")[0].histogram_value
    assert first.num == 4 * 2  # 4 envs at the first reset + 4 resets after their 50-step episodes
    assert 0.7 <= first.min <= first.max <= 1.3  # default.toml's range
    assert first.max > first.min


def test_adr_run_starts_at_nominal_logs_ranges_and_resumes(tmp_path):
    adr = AdrConfig(enabled=True, boundary_probability=0.5, buffer_size=2, success_high=0.5, success_low=0.0)
    cfg = TrainConfig(env=PUSH, adr=adr, **SMALL)
    run_dir = tmp_path / "adr"
    trainer = Trainer(cfg, run_dir, progress=False)
    trainer.train()
    rows = read_metrics(run_dir)
    assert {"adr_object_mass_low", "adr_object_mass_high", "adr_coverage"} <= set(rows[0])
    # Until a boundary moves, every range is its nominal point, so every env trained at nominal mass.
    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"histograms": 0})
    events.Reload()
    first = events.Histograms("randomization/object_mass")[0].histogram_value
    assert first.min == first.max == 1.0
    state = torch.load(run_dir / "final.pt", weights_only=False)
    assert state["adr"]["low"] == trainer.adr.low and state["adr"]["high"] == trainer.adr.high
    # Resume restores the ADR state, not a fresh one.
    resumed = Trainer.resume(run_dir, overrides={"run": {"total_steps": 600}}, progress=False)
    assert resumed.adr.state_dict() == trainer.adr.state_dict()
    resumed.train()
    assert len(read_metrics(run_dir)) == len(rows) + 1


def test_adr_needs_a_spec_and_a_synchronous_algorithm():
    with pytest.raises(ValueError, match="--randomization default"):
        TrainConfig(env=EnvConfig(randomization="none"), adr=AdrConfig(enabled=True))
    with pytest.raises(ValueError, match="asymmetric_critic needs separate"):
        PolicyConfig(asymmetric_critic=True, shared_trunk=True)


def test_transfer_options_through_the_cli(tmp_path):
    """robopg train with shaped rewards, the sim2real spec, an asymmetric critic and ADR; export; evaluate the
    file under a reality profile."""
    import json
    import subprocess
    import sys

    def robopg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "robopg", *args], capture_output=True, text=True, timeout=300)

    run, policy = tmp_path / "run", tmp_path / "policy.onnx"
    spec = Path(envs.randomization.SPECS_DIR) / "sim2real.toml"
    done = robopg("train", "--task", "FetchPush-v4", "--reward", "shaped", "--randomization", str(spec),
                  "--asymmetric-critic", "--adr", "--adr-buffer-size", "4", "--num-envs", "2", "--rollout-steps", "50",
                  "--epochs", "1", "--total-steps", "200", "--seed", "2", "--no-progress", "--out", str(run))
    assert done.returncode == 0, done.stderr
    saved = json.loads((run / "config.json").read_text())
    assert saved["adr"]["enabled"] and saved["adr"]["buffer_size"] == 4
    assert saved["policy"]["asymmetric_critic"] and saved["env"]["reward"] == "shaped"
    assert robopg("export", str(run), "--out", str(policy)).returncode == 0
    evaluated = robopg("evaluate", str(policy), "--task", "FetchPush-v4", "--profile", "latency_3", "--episodes", "2",
                       "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["profile"] == "latency_3"


def test_adr_manages_only_what_the_task_can_vary():
    cfg = TrainConfig(env=EnvConfig(task="FetchReachDense-v4", num_envs=2, randomization="default"),
                      adr=AdrConfig(enabled=True), **SMALL)
    managed = set(Trainer(cfg, "unused", progress=False).adr.limit)
    assert "joint_damping" in managed and "action_latency" in managed
    assert not {"object_mass", "object_friction", "gripper_gain"} & managed  # FetchReach has no object


def test_latency_input_reaches_the_actor_and_leaves_the_critics_columns_in_place(one_rollout, tmp_path):
    """--latency-input with the asymmetric critic and latency-aligned advantages: the actor's input carries the delay
    after the task's values (then the action history); the critic's input and its latency column are unchanged."""
    spec = tmp_path / "lat2.toml"
    spec.write_text('[action_latency]\ndistribution = "fixed"\nvalue = 2\n')
    env_cfg = EnvConfig(task="FetchPush-v4", num_envs=2, randomization=str(spec), action_history=2, latency_input=True)
    policy_cfg = PolicyConfig(hidden_sizes=(32, 32), asymmetric_critic=True, latency_aligned_advantages=True)
    cfg = TrainConfig(env=env_cfg, **{**SMALL, "policy": policy_cfg})
    facts = TaskFacts.for_run(cfg)
    assert facts.layout[-1] == ("action_latency_steps", 1)
    assert facts.obs_dim == facts.task_obs_dim + 1 == 32  # FetchPush: 25 + 3 + 3 task values
    column = facts.latency_column(cfg)
    assert column == 31 + facts.privileged.index("action_latency")  # the noiseless observation has no such field
    policy = build_policy(cfg, facts)
    assert policy.obs_dim == 32 + 2 * 4 and policy.critic_obs_dim == 31 + len(facts.privileged)
    storage = one_rollout(policy, env_cfg, steps=60, num_envs=2, seed=5, sample_seed=6, success_key=None,
                          latency_column=column)
    assert storage.obs[..., 31].unique().tolist() == [2.0]  # the actor is told the delay, every step
    assert storage.critic_obs[..., column].unique().tolist() == [2.0]


def test_a_latency_input_file_is_evaluated_with_the_delay_filled_in(tmp_path):
    """Train (briefly) -> export -> evaluate: the file's layout names the field, and ``robopg evaluate`` builds the
    simulated robot to report each profile's delay in it (3 under latency_3), with no fallback."""
    spec = tmp_path / "lat03.toml"
    spec.write_text('[action_latency]\ndistribution = "uniform"\nlow = 0\nhigh = 3\n')
    env = EnvConfig(task="FetchReach-v4", num_envs=4, randomization=str(spec), latency_input=True)
    cfg = TrainConfig(env=env, **{**SMALL, "run": RunConfig(total_steps=800, seed=4, checkpoint_every=0)})
    Trainer(cfg, tmp_path / "run", progress=False).train()
    out = export_policy(tmp_path / "run", tmp_path / "told.onnx").path
    controller = Controller.load(out)
    assert controller.metadata.observation_layout[-1] == ("action_latency_steps", 1)
    seen = []
    robot = SimRobot("FetchReach-v4", seed=0, profile="latency_3", latency_input=True,
                     observer=lambda r: seen.append(float(r.read()[-1])))
    robot.apply(np.zeros(4, np.float32))
    robot.close()
    assert seen == [3.0, 3.0]  # after the reset and after a step
    result = evaluate_policy(out, profile="latency_3", episodes=2, seed=0)
    assert result.episodes == 2 and result.fallbacks == 0
