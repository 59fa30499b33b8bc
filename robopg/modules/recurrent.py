"""Recurrent Gaussian actor-critic: an LSTM or GRU under the MLP heads, with the state zeroed at episode starts.

    actor:   (m_t, s_t) = RNN_theta(norm(x_t), s_{t-1}),   u_t ~ N(head_theta(m_t), diag(exp(log_std))^2)
    critic:  V_t = head_phi(RNN_phi(norm(x_t), ...)), a memory of its own; with an asymmetric critic an MLP on the
             privileged inputs, as in the feed-forward policy

s is zeros at the first step of every episode: the reset rule the collector, the update's sequences, the exported
file's metadata and the robot's Controller all follow. Memory is how a policy infers the robot it is on (Peng et
al. 2018: an LSTM policy transferred best under dynamics randomisation).

Why the critic has its own memory: one shared with the actor would let the value loss shape what the actor
remembers (the reason a recurrent policy refuses --shared-trunk). Why the asymmetric critic stays an MLP: its
privileged input is the noiseless state and this episode's true randomised parameters, exactly what the actor's
memory has to infer from the history, so given it the value needs no memory (Pinto et al. 2018) and its fit needs
no back-propagation through time.

A state is a tuple of tensors: (h,) for a GRU, (h, c) for an LSTM, each (layers, N, hidden), torch.nn.LSTM's
layout and that of the exported file's ``h_in`` / ``c_in``. The policy's state is the actor's, then the critic's
(none for an asymmetric critic).
"""

from __future__ import annotations

import torch
from torch import nn

from robopg.config import PolicyConfig, Recurrent
from robopg.distributions import gaussian_log_prob
from robopg.modules.actor_critic import GaussianActorCritic, mlp
from robopg.storage import Sequences

State = tuple[torch.Tensor, ...]
"""(h,) for a GRU, (h, c) for an LSTM (each (layers, N, hidden)); concatenated for actor and critic."""


class Memory(nn.Module):
    """An LSTM or GRU over time: inputs (T, N, input_dim) -> outputs (T, N, hidden) and the state after them."""

    def __init__(self, kind: Recurrent, input_dim: int, hidden_size: int, layers: int,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if kind is Recurrent.NONE:
            raise ValueError("Memory needs --recurrent lstm or gru")
        self.kind, self.hidden_size, self.layers = kind, hidden_size, layers
        rnn_cls = nn.LSTM if kind is Recurrent.LSTM else nn.GRU
        # Built on the meta device and initialised here: nn.LSTM's own init draws from torch's global generator.
        # Orthogonal weights and zero biases, as CleanRL's recurrent PPO initialises its LSTM.
        self.rnn = rnn_cls(input_dim, hidden_size, layers, device="meta").to_empty(device="cpu")
        for name, param in self.rnn.named_parameters():
            if name.startswith("weight"):
                nn.init.orthogonal_(param, generator=generator)
            else:
                nn.init.zeros_(param)

    @property
    def state_count(self) -> int:
        """Tensors in a state: 2 for an LSTM (h, c), 1 for a GRU (h)."""
        return 2 if self.kind is Recurrent.LSTM else 1

    def zero_state(self, num_envs: int) -> State:
        """The state at an episode's start: zeros, each (layers, num_envs, hidden)."""
        return tuple(torch.zeros(self.layers, num_envs, self.hidden_size) for _ in range(self.state_count))

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """x: (T, N, input_dim) of one stretch without an episode start after its first step."""
        if self.kind is Recurrent.LSTM:
            out, (h, c) = self.rnn(x, state)
            return out, (h, c)
        out, h = self.rnn(x, state[0])
        return out, (h,)

    def sequence(self, x: torch.Tensor, starts: torch.Tensor, state: State) -> torch.Tensor:
        """Outputs (T, N, hidden) along x: (T, N, input_dim) from ``state``, zeroing env j's state before every step
        t with starts[t, j] (T, N) bool. One RNN call per stretch between the steps where some env starts."""
        cuts = [0, *(torch.nonzero(starts[1:].any(dim=1)).flatten() + 1).tolist(), x.shape[0]]
        outputs = []
        for begin, end in zip(cuts[:-1], cuts[1:], strict=True):
            keep = (~starts[begin]).to(x.dtype).view(1, -1, 1)
            out, state = self(x[begin:end], tuple(s * keep for s in state))
            outputs.append(out)
        return torch.cat(outputs)


class RecurrentNet(nn.Module):
    """A memory with an MLP head on its output: normalised inputs -> head outputs, carrying the state."""

    def __init__(self, memory: Memory, head: nn.Module) -> None:
        super().__init__()
        self.memory, self.head = memory, head

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One step: x (N, input_dim) -> (head output (N, out_dim), next state)."""
        out, state = self.memory(x.unsqueeze(0), state)
        return self.head(out[0]), state

    def sequence(self, x: torch.Tensor, starts: torch.Tensor, state: State) -> torch.Tensor:
        """x (T, N, input_dim), starts (T, N) -> head outputs (T, N, out_dim) (Memory.sequence's zeroing)."""
        return self.head(self.memory.sequence(x, starts, state))


class RecurrentActorCritic(GaussianActorCritic):
    """The Gaussian actor-critic with an LSTM/GRU actor (and critic); see the module docstring.

    Update (sequence) methods take the batch's ``Sequences`` (``Batch.memory``): obs (T * n, obs_dim) time-major.
    Collection and deployment step one tick at a time with an explicit state: ``act_step``, ``value_step``,
    ``mean_step``. The feed-forward per-sample methods (``act``, ``sample_actions``, ``deterministic_action``)
    need a state this class cannot guess, and raise.
    """

    recurrent = True

    def _build_networks(self, cfg: PolicyConfig, generator: torch.Generator | None) -> None:
        hidden = cfg.rnn_hidden_size
        self.actor = RecurrentNet(Memory(cfg.recurrent, self.obs_dim, hidden, cfg.rnn_layers, generator),
                                  mlp(hidden, cfg.hidden_sizes, self.act_dim, cfg.activation, 0.01, generator))
        if self.asymmetric:
            self.critic = mlp(self.critic_obs_dim, cfg.hidden_sizes, 1, cfg.activation, 1.0, generator)
        else:
            self.critic = RecurrentNet(Memory(cfg.recurrent, self.obs_dim, hidden, cfg.rnn_layers, generator),
                                       mlp(hidden, cfg.hidden_sizes, 1, cfg.activation, 1.0, generator))

    # ----- state -------------------------------------------------------------------------------------------
    def initial_state(self, num_envs: int) -> State:
        """The policy's state at an episode's start (zeros): the actor's tensors, then the critic's."""
        critic = () if self.asymmetric else self.critic.memory.zero_state(num_envs)
        return (*self.actor.memory.zero_state(num_envs), *critic)

    def split_state(self, state: State) -> tuple[State, State]:
        """(actor's state, critic's state) of a policy state (the critic's is () for an asymmetric critic)."""
        k = self.actor.memory.state_count
        return state[:k], state[k:]

    # ----- one step with an explicit state (collection, export, the robot) ---------------------------------
    @torch.no_grad()
    def act_step(self, obs: torch.Tensor, critic_obs: torch.Tensor | None, state: State,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """Sample u ~ pi(. | x_t, s_{t-1}): obs (N, obs_dim) -> (actions, log_probs (N,), values (N,), means
        (N, act_dim), next state). critic_obs: the privileged inputs of an asymmetric critic, else unused."""
        actor_state, critic_state = self.split_state(state)
        mean, actor_state = self.mean_step(obs, actor_state)
        values, critic_state = self.value_step(critic_obs if self.asymmetric else obs, critic_state)
        actions = self._sample(mean, generator)
        return actions, gaussian_log_prob(actions, mean, self.log_std), values, mean, (*actor_state, *critic_state)

    def mean_step(self, obs: torch.Tensor, actor_state: State) -> tuple[torch.Tensor, State]:
        """The actor alone: raw obs (N, obs_dim) and its state -> (mean (N, act_dim), its next state)."""
        return self.actor.step(self.normalizer(obs), actor_state)

    def value_step(self, critic_obs: torch.Tensor | None, critic_state: State) -> tuple[torch.Tensor, State]:
        """V of one step: critic input (N, ...) and the critic's state -> (values (N,), its next state)."""
        if self.asymmetric:
            return self.critic(self.critic_normalizer(self._check_critic_obs(critic_obs))).squeeze(-1), ()
        values, critic_state = self.critic.step(self.normalizer(critic_obs), critic_state)
        return values.squeeze(-1), critic_state

    @torch.no_grad()
    def sample_step(self, obs: torch.Tensor, actor_state: State,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, State]:
        """u ~ pi(. | x_t, s_{t-1}) from the actor alone: (actions (N, act_dim) normalised, next actor state)."""
        mean, actor_state = self.mean_step(obs, actor_state)
        return self._sample(mean, generator), actor_state

    @torch.no_grad()
    def deterministic_step(self, obs: torch.Tensor, actor_state: State) -> tuple[torch.Tensor, State]:
        """The deployed policy: raw obs (N, obs_dim) -> (mean action in robot bounds (N, act_dim), next state)."""
        mean, actor_state = self.mean_step(obs, actor_state)
        return self.to_env_action(mean), actor_state

    # ----- whole sequences (the update) --------------------------------------------------------------------
    def mean(self, obs: torch.Tensor, memory: Sequences | None = None) -> torch.Tensor:
        """The actor along the batch's sequences: raw obs (T * n, obs_dim) -> means (T * n, act_dim)."""
        seq = _sequences(memory)
        actor_state, _ = self.split_state(seq.initial_state)
        x = self.normalizer(obs).reshape(seq.steps, seq.envs, -1)
        return self.actor.sequence(x, seq.starts, actor_state).reshape(-1, self.act_dim)

    def value(self, critic_obs: torch.Tensor, memory: Sequences | None = None) -> torch.Tensor:
        """V along the batch's sequences: (T * n, critic_obs_dim) -> (T * n,) (an asymmetric critic: per sample)."""
        if self.asymmetric:
            return self.critic(self.critic_normalizer(critic_obs)).squeeze(-1)
        seq = _sequences(memory)
        _, critic_state = self.split_state(seq.initial_state)
        x = self.normalizer(critic_obs).reshape(seq.steps, seq.envs, -1)
        return self.critic.sequence(x, seq.starts, critic_state).reshape(-1)

    def forward(self, obs: torch.Tensor, critic_obs: torch.Tensor | None = None,
                memory: Sequences | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(means (T * n, act_dim), values (T * n,)) along the batch's sequences."""
        critic_input = self._check_critic_obs(critic_obs) if self.asymmetric else obs
        return self.mean(obs, memory), self.value(critic_input, memory)


def _sequences(memory: Sequences | None) -> Sequences:
    if memory is None:
        raise ValueError("a recurrent policy runs on whole env sequences: pass the batch's memory (Batch.memory), "
                         "or step it with act_step / mean_step and an explicit state")
    return memory
