"""Is the PPO update compute-bound? Its minibatch step against the FLOPs it must do, and a dense matmul's rate.

Builds the preset's policy (actor and critic as training builds them, for the preset's task), times
``PPO.minibatch_step`` (forward, the clipped loss, backward, gradient clip and Adam step) on minibatches of the
preset's size, and counts the multiply-adds of the networks' linear layers: forward 1x, backward 2x (input and
weight gradients). The same thread count runs a (B x 256) @ (256 x 256) matmul loop: the rate this machine's
torch reaches on the update's own shapes. Achieved / matmul rate near 1 means the update is bound by its
arithmetic: fewer or smaller matmuls (epochs, minibatches, network) are the only way to a faster update, not
less Python around it (docs/batched_engine.md).

    python scripts/bench_update_flops.py --preset fetch-push --threads 1 2
"""

from __future__ import annotations

import argparse
import time

import torch

from robopg.algos.ppo import PPO
from robopg.config import resolve_config
from robopg.facts import TaskFacts
from robopg.modules.build import build_policy
from robopg.storage import Batch


def linear_macs(module: torch.nn.Module, batch: int) -> int:
    """Multiply-adds of one forward pass of every Linear layer in ``module`` on ``batch`` samples."""
    return sum(m.in_features * m.out_features * batch for m in module.modules() if isinstance(m, torch.nn.Linear))


def random_batch(policy, size: int, gen: torch.Generator) -> Batch:
    """A minibatch of ``size`` random inputs of the policy's shapes, with pi_old's values from the policy itself."""
    obs = torch.randn(size, policy.obs_dim, generator=gen)
    critic_obs = torch.randn(size, policy.critic_obs_dim, generator=gen) if policy.asymmetric else obs
    with torch.no_grad():
        actions = torch.randn(size, policy.act_dim, generator=gen) * 0.3
        log_probs, _, values, means = policy.evaluate(obs, actions, critic_obs, None)
    return Batch(obs=obs, critic_obs=critic_obs, actions=actions, log_probs=log_probs, means=means,
                 log_std=policy.log_std.detach().clone(), values=values,
                 advantages=torch.randn(size, generator=gen), returns=values + torch.randn(size, generator=gen))


def timed(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fetch-push")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()

    cfg = resolve_config(args.preset, None, {})
    facts = TaskFacts.for_run(cfg)
    gen = torch.Generator().manual_seed(0)
    policy = build_policy(cfg, facts, gen)
    ppo = PPO(policy, cfg.ppo)
    samples = cfg.env.num_envs * cfg.ppo.rollout_steps
    size = samples // cfg.ppo.minibatches
    batch = random_batch(policy, size, gen)
    forward = linear_macs(policy, size)
    macs = 3 * forward  # forward + input gradients + weight gradients
    steps_per_update = cfg.ppo.epochs * cfg.ppo.minibatches
    print(f"preset {args.preset}: rollout {samples} samples, {cfg.ppo.epochs} epochs x {cfg.ppo.minibatches} "
          f"minibatches of {size}; actor+critic {forward / size / 1e3:.0f}k MACs per sample forward; "
          f"{macs * steps_per_update * 2 / 1e9:.1f} GFLOP per update")
    width = cfg.policy.hidden_sizes[0]
    a, w = torch.randn(size, width, generator=gen), torch.randn(width, width, generator=gen)
    for threads in args.threads:
        torch.set_num_threads(threads)
        step_s = timed(lambda: ppo.minibatch_step(batch), args.repeats)
        mm_s = timed(lambda: a @ w, args.repeats * 20)
        achieved = 2 * macs / step_s / 1e9
        matmul = 2 * size * width * width / mm_s / 1e9
        print(f"threads {threads}: minibatch step {step_s * 1e3:.2f} ms ({achieved:.1f} GFLOP/s), update "
              f"{step_s * steps_per_update:.3f} s; ({size}x{width})@({width}x{width}) matmul {matmul:.1f} GFLOP/s: "
              f"the step runs at {achieved / matmul:.0%} of it", flush=True)


if __name__ == "__main__":
    main()
