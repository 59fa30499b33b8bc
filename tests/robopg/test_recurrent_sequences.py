"""Recurrent policies in training: config, the masks at episode starts, the stored state at a rollout's start, and
the update's sequences reproducing exactly the log-probabilities the collector acted with (a sequence bug shows up
there first)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robopg.cli import build_parser
from robopg.collector import Collector
from robopg.config import EnvConfig, PolicyConfig, PPOConfig, Recurrent, RunConfig, TrainConfig
from robopg.environment import make_training_env
from robopg.facts import TaskFacts
from robopg.modules import RecurrentActorCritic, build_policy
from robopg.modules.recurrent import Memory
from robopg.sequences import RecurrentActing, SequenceStorage, rollout_storage
from robopg.storage import RolloutStorage

OBS_DIM, ACT_DIM = 5, 2


def small_policy(kind: str = "lstm", layers: int = 1, seed: int = 0) -> RecurrentActorCritic:
    cfg = PolicyConfig(hidden_sizes=(8,), recurrent=kind, rnn_hidden_size=6, rnn_layers=layers)
    return RecurrentActorCritic(OBS_DIM, ACT_DIM, np.full(ACT_DIM, -1.0), np.full(ACT_DIM, 1.0), cfg,
                                generator=torch.Generator().manual_seed(seed))


def test_flags_config_and_refusals():
    args = build_parser().parse_args(["train", "--recurrent", "gru", "--rnn-hidden-size", "32", "--rnn-layers", "2"])
    assert (getattr(args, "policy.recurrent"), getattr(args, "policy.rnn_hidden_size"),
            getattr(args, "policy.rnn_layers")) == ("gru", 32, 2)
    assert PolicyConfig().recurrent is Recurrent.NONE
    with pytest.raises(ValueError, match="drop --shared-trunk"):
        PolicyConfig(recurrent="lstm", shared_trunk=True)
    with pytest.raises(ValueError, match="rnn_hidden_size must be >= 1"):
        PolicyConfig(recurrent="lstm", rnn_hidden_size=0)
    with pytest.raises(ValueError, match=r"whole env sequences: 8 minibatches from 4 envs. Fix: pass --minibatches 4"):
        TrainConfig(env=EnvConfig(num_envs=4), policy=PolicyConfig(recurrent="lstm"), ppo=PPOConfig(minibatches=8))
    TrainConfig(env=EnvConfig(num_envs=4), ppo=PPOConfig(minibatches=8))  # feed-forward: samples, not sequences


def test_the_masks_are_the_episode_starts_of_a_hand_built_rollout():
    """T = 6 steps of 3 envs: env 0 starts at step 0 (fresh reset) and ends at step 2, env 1 ends at steps 0 and 4,
    env 2 runs on from the previous rollout. The state must be zeroed before steps (0, env 0), (3, env 0),
    (1, env 1), (5, env 1), and nowhere else."""
    storage = SequenceStorage(6, 3, OBS_DIM, ACT_DIM)
    storage.first_is_start = torch.tensor([True, False, False])
    storage.dones[2, 0] = storage.dones[0, 1] = storage.dones[4, 1] = 1.0
    expected = torch.zeros(6, 3, dtype=torch.bool)
    expected[0, 0] = expected[3, 0] = expected[1, 1] = expected[5, 1] = True
    assert torch.equal(storage.sequences().starts, expected)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_memory_zeroes_the_state_exactly_at_the_starts(kind):
    """Memory.sequence (one RNN call per stretch between starts) equals a step-by-step loop that zeroes the state
    of env j before step t where starts[t, j]; at a start the past no longer matters, elsewhere it does."""
    torch.manual_seed(0)
    memory = Memory(Recurrent(kind), 4, 6, 2, torch.Generator().manual_seed(1))
    starts = torch.zeros(7, 3, dtype=torch.bool)
    starts[3, 0] = starts[1, 1] = starts[5, 1] = True  # env 2 never restarts: it keeps the initial state
    x = torch.randn(7, 3, 4)
    state = tuple(torch.randn(2, 3, 6) for _ in range(memory.state_count))
    with torch.no_grad():
        out = memory.sequence(x, starts, state)
        reference, s = [], state
        for t in range(7):
            s = tuple(torch.where(starts[t].view(1, -1, 1), torch.zeros_like(part), part) for part in s)
            step_out, s = memory(x[t : t + 1], s)
            reference.append(step_out)
        np.testing.assert_allclose(out.numpy(), torch.cat(reference).numpy(), atol=1e-6)

        changed = x.clone()
        changed[:3, 0] += 1.0  # env 0 before its start at step 3
        changed[0, 2] += 1.0  # env 2 at step 0
        again = memory.sequence(changed, starts, state)
    assert not torch.allclose(again[:3, 0], out[:3, 0])
    assert torch.equal(again[3:, 0], out[3:, 0])  # after the start: the same numbers, bit for bit
    assert not torch.allclose(again[6, 2], out[6, 2])  # no start: step 0 still shapes step 6
    assert torch.equal(again[:, 1], out[:, 1])


def fill_staggered(policy: RecurrentActorCritic, storage: SequenceStorage, acting: RecurrentActing,
                   ends: dict[int, list[int]], seed: int) -> None:
    """One rollout into ``storage`` as the collector fills it, with envs whose episodes end at the steps ``ends``
    gives (step -> envs), so the starts are staggered across envs."""
    generator = torch.Generator().manual_seed(seed)
    storage.reset()
    storage.log_std.copy_(policy.log_std.detach())
    acting.begin(storage)
    n = storage.num_envs
    with torch.no_grad():
        for t in range(storage.num_steps):
            obs = torch.randn(n, OBS_DIM, generator=generator)
            actions, log_probs, values, means = acting.act(obs, None, generator)
            done = torch.zeros(n, dtype=torch.bool)
            done[ends.get(t, [])] = True
            storage.add(obs, actions, log_probs, values, means, torch.zeros(n), done, torch.zeros(n, dtype=torch.bool))
            if done.any():
                acting.episodes_ended(np.flatnonzero(done.numpy()))
        storage.finish(acting.value(torch.randn(n, OBS_DIM, generator=generator)))


@pytest.mark.parametrize("kind,layers", [("lstm", 1), ("gru", 2)])
def test_the_update_recomputes_the_collection_log_probs_on_staggered_sequences(kind, layers):
    policy = small_policy(kind, layers)
    policy.normalizer.update(torch.randn(100, OBS_DIM) * 3 + 1)  # statistics other than the identity
    storage, acting = SequenceStorage(9, 4, OBS_DIM, ACT_DIM), RecurrentActing(policy, 4)
    ends = {1: [0], 3: [1, 2], 6: [0], 8: [3]}
    fill_staggered(policy, storage, acting, ends, seed=1)
    storage.first_is_start = storage.dones[-1].bool()
    fill_staggered(policy, storage, acting, {2: [3], 5: [0, 1]}, seed=2)  # the second rollout starts mid-episode
    assert all(s.abs().sum() > 0 for s in storage.initial_state)

    batch = storage.full_batch()
    with torch.no_grad():
        log_probs, _, values, means = policy.evaluate(batch.obs, batch.actions, batch.critic_obs, batch.memory)
    np.testing.assert_allclose(log_probs.numpy(), storage.log_probs.reshape(-1).numpy(), atol=1e-5)
    np.testing.assert_allclose(values.numpy(), storage.values.reshape(-1).numpy(), atol=1e-6)
    np.testing.assert_allclose(means.numpy(), storage.means.reshape(-1, ACT_DIM).numpy(), atol=1e-6)

    # Minibatches are whole env sequences, shuffled: each recomputes its envs' log-probs too.
    seen = []
    for mb in storage.minibatches(2, torch.Generator().manual_seed(0)):
        assert mb.memory.steps == 9 and mb.obs.shape == (9 * mb.memory.envs, OBS_DIM)
        with torch.no_grad():
            mb_log_probs, *_ = policy.evaluate(mb.obs, mb.actions, mb.critic_obs, mb.memory)
        np.testing.assert_allclose(mb_log_probs.numpy(), mb.log_probs.numpy(), atol=1e-5)
        seen += [tuple(row) for row in mb.obs[: mb.memory.envs].tolist()]
    assert sorted(seen) == sorted(tuple(row) for row in storage.obs[0].tolist())  # every env exactly once


def test_gradient_flows_back_through_the_rollout_and_not_into_the_stored_state():
    """Truncated back-propagation through time: a loss at the last step reaches inputs of earlier steps of the same
    episode, not those before the episode's start, and the stored initial state is data."""
    policy = small_policy()
    storage, acting = SequenceStorage(6, 2, OBS_DIM, ACT_DIM), RecurrentActing(policy, 2)
    fill_staggered(policy, storage, acting, {1: [0]}, seed=3)  # env 0 restarts at step 2
    batch = storage.full_batch()
    obs = batch.obs.clone().requires_grad_(True)
    mean = policy.mean(obs, batch.memory).reshape(6, 2, ACT_DIM)
    mean[-1].sum().backward()
    grad = obs.grad.reshape(6, 2, OBS_DIM).abs().sum(-1)
    assert (grad[2:, 0] > 0).all() and (grad[:2, 0] == 0).all()
    assert (grad[:, 1] > 0).all()
    assert not any(s.requires_grad for s in batch.memory.initial_state)


@pytest.mark.parametrize("kind,asymmetric", [("lstm", False), ("gru", True)])
def test_the_collector_carries_the_state_across_episodes_and_rollouts_on_fetch_reach(kind, asymmetric):
    """The real collector on FetchReachDense-v4 (50-step episodes), two rollouts of 64 steps: an episode boundary
    inside each, the second starting mid-episode from the state the first ended with. The update's full batch and
    minibatches recompute the collected log-probs and values."""
    cfg = TrainConfig(env=EnvConfig(task="FetchReachDense-v4", num_envs=4, randomization="default"),
                      policy=PolicyConfig(hidden_sizes=(16,), recurrent=kind, rnn_hidden_size=8,
                                          asymmetric_critic=asymmetric),
                      run=RunConfig(seed=5))
    facts = TaskFacts.for_run(cfg)
    policy = build_policy(cfg, facts, torch.Generator().manual_seed(5))
    assert isinstance(policy, RecurrentActorCritic) and policy.asymmetric == asymmetric
    storage = rollout_storage(policy, 64, 4)
    assert isinstance(storage, SequenceStorage)
    env = make_training_env(cfg.env, 4, seed=5)
    try:
        collector = Collector(env, policy, storage, facts.success_key, torch.Generator().manual_seed(6))
        collector.reset(seed=5)
        collector.collect()
        assert torch.equal(storage.sequences().starts[[0, 50]], torch.ones(2, 4, dtype=torch.bool))
        policy.update_normalizers(storage.obs, storage.critic_obs)
        final_state = tuple(s.clone() for s in collector.acting.state)
        collector.collect()
    finally:
        env.close()
    assert not storage.first_is_start.any()
    for stored, carried in zip(storage.initial_state, final_state, strict=True):
        assert torch.equal(stored, carried) and stored.abs().sum() > 0
    assert torch.equal(torch.nonzero(storage.sequences().starts.any(dim=1)).flatten(), torch.tensor([36]))
    batch = storage.full_batch()
    with torch.no_grad():
        log_probs, _, values, _ = policy.evaluate(batch.obs, batch.actions, batch.critic_obs, batch.memory)
    np.testing.assert_allclose(log_probs.numpy(), storage.log_probs.reshape(-1).numpy(), atol=1e-5)
    np.testing.assert_allclose(values.numpy(), storage.values.reshape(-1).numpy(), atol=1e-5)


def test_feed_forward_policies_keep_the_flat_storage():
    cfg = TrainConfig(env=EnvConfig(task="FetchReachDense-v4", num_envs=2, randomization="none"))
    policy = build_policy(cfg, TaskFacts.for_run(cfg), torch.Generator().manual_seed(0))
    storage = rollout_storage(policy, 4, 2)
    assert type(storage) is RolloutStorage and not policy.recurrent
    assert storage.full_batch().memory is None
