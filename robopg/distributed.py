"""Training across processes and machines under torchrun, with torch.distributed (gloo on CPU, nccl on GPU).

``torchrun --nproc_per_node N -m robopg train ...`` starts N copies of the same training, one per rank. Each
rank steps its own environments with its own seeds (``robopg/seeds.py``: ``rank_seed``, ``rank_env_seed``) and
holds a full copy of the policy; the copies start from rank 0's parameters and stay identical because every
rank applies the same update:

- the gradients of every optimiser step are averaged over the ranks (``world().average_gradients``, called
  by ``robopg/algos/optimization.py``'s one optimiser step, so every algorithm's every minibatch);
- every statistic an update decides on is the ranks' mean (``average``, ``mean``, ``minimum``): PPO's KL for
  the adaptive learning rate and the target-KL stop, PPO-KL's KL for beta, TRPO's gradient, Fisher-vector
  products and line-search gain and KL, REINFORCE's count of usable samples;
- the observation normaliser merges the moments of every rank's rollout (``gather_moments``, then the
  parallel-variance formula in robopg/modules/normalizer.py);
- the iteration's episodes are pooled (``pool``): metrics, the curriculum's success gate and ADR's boundary
  decisions (robopg/adr.py) see every rank's episodes.

Rank 0 alone writes the run directory (robopg/runners/trainer.py); checkpoints carry every rank's generators
under ``"ranks"`` (``with_rank_states``), so a resumed run continues each rank's streams.

Outside torchrun (no ``WORLD_SIZE`` above 1 in the environment) ``setup`` returns ``Local``, whose collectives
are the identity: a single process trains exactly as it would without this module. The choice is made once,
when the trainer is built. A rank that dies or hangs makes the others' next collective fail within
``run.dist_timeout`` seconds; they then name the rank that did not answer (``RankFailure``).
"""

from __future__ import annotations

import datetime
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from robopg.config import Algo, Device, RunConfig

WORLD_KEY, RANKS_KEY = "world_size", "ranks"
"""Checkpoint keys of a run trained on several ranks: their number, and each rank's own state (rank order)."""

_EPISODE_LISTS = ("finished_returns", "finished_lengths", "finished_successes")
_EPISODE_DICTS = ("finished_terms", "randomization")
"""What ``pool`` merges of each rank's EpisodeStats (robopg/collector.py): the finished episodes and the
randomisation values since the last drain."""


class RankFailure(RuntimeError):
    """A collective failed: another rank died, hung past the timeout, or left; the message names it."""


class Local:
    """This process alone (not under torchrun): every collective is the identity, nothing is exchanged."""

    rank = 0
    size = 1
    is_main = True
    distributed = False
    env_threads: int | None = None
    """Physics threads of the batched backend: None, its own default (all cores)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def broadcast_module(self, module: nn.Module) -> None:
        """Make ``module``'s parameters and buffers rank 0's."""

    def average_gradients(self, params: Sequence[nn.Parameter]) -> None:
        """Replace each parameter's gradient by its mean over the ranks."""

    def average(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of ``tensor`` over the ranks (a new tensor; here ``tensor`` itself)."""
        return tensor

    def mean(self, value: float) -> float:
        """The mean of a number over the ranks."""
        return value

    def minimum(self, value: int) -> int:
        """The smallest of an integer over the ranks."""
        return value

    def gather_moments(self, count: Any, mean: torch.Tensor, var: torch.Tensor) -> list[tuple[Any, ...]]:
        """Every rank's (count, mean (D,), var (D,)) of its data, in rank order."""
        return [(count, mean, var)]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order."""
        return [value]

    def pool(self, metrics: dict[str, float], stats: Any) -> dict[str, float]:
        """The update metrics averaged over the ranks; ``stats`` (an EpisodeStats) then holds every rank's
        finished episodes and randomisation values, in rank order."""
        return metrics

    def drain_sync_seconds(self) -> dict[str, float]:
        """{"sync_seconds": time spent in collectives since the last call} (nothing for one process)."""
        return {}

    def with_rank_states(self, state: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
        """``state`` plus, under torchrun, every rank's values of ``keys`` (for the checkpoint)."""
        return state

    def own_rank_state(self, state: dict[str, Any], source: str) -> dict[str, Any]:
        """The checkpoint ``state`` as this rank resumes it: with its own values of the per-rank keys."""
        saved = int(state.get(WORLD_KEY, 1))
        if saved != 1:
            raise ValueError(f"{source} was trained on {saved} ranks and this run is one process. Fix: resume it "
                             f"under torchrun with {saved} ranks (robopg train --nproc-per-node {saved} --resume ...)")
        return state

    def shutdown(self) -> None:
        """Leave the process group (after the last collective)."""


class ProcessGroup(Local):
    """This process as rank ``rank`` of ``size`` under torchrun; the collectives go through torch.distributed's
    default process group (nccl with --device cuda, else gloo) and, for Python objects, a gloo group."""

    distributed = True

    def __init__(self, device: torch.device, rank: int, size: int, local_size: int, timeout_s: float) -> None:
        super().__init__(device)
        self.rank, self.size, self.is_main = rank, size, rank == 0
        self.timeout_s = timeout_s
        # The ranks of a node share its cores: split the batched backend's physics threads among them.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.env_threads = max(1, cores // local_size)
        timeout = datetime.timedelta(seconds=timeout_s)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timeout)
        self.objects = dist.new_group(backend="gloo", timeout=timeout) if backend == "nccl" else dist.group.WORLD
        # torchrun's rendezvous store (where env:// found the process group), for the roll call after a failure.
        self.store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                                   timeout=timeout)
        self.roll_call_key = f"robopg/roll-call/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
        self.sync_seconds = 0.0

    def _run(self, what: str, collective: Any, *args: Any, **kwargs: Any) -> Any:
        """One collective, timed; a failure becomes a RankFailure naming the rank that did not answer."""
        start = time.perf_counter()
        try:
            return collective(*args, **kwargs)
        except RuntimeError as err:
            raise RankFailure(self._failure(what, err)) from None
        finally:
            self.sync_seconds += time.perf_counter() - start

    def _failure(self, what: str, err: RuntimeError) -> str:
        """The message of a failed collective: what failed, why (the backend's first line), which rank is lost."""
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        first = re.sub(r"^\[[^\]]*\] ?", "", first).split(". ")[0]  # without gloo's source line and advice
        missing = self._roll_call()
        if missing is None:
            culprit = "torchrun's rendezvous store does not answer either (the node hosting it is down)"
        elif missing:
            culprit = (f"rank {', '.join(map(str, missing))} did not answer a roll call within {self.timeout_s:g} s "
                       "(dead, hung or stopped)")
        else:
            culprit = f"all {self.size} ranks answered a roll call afterwards, so they called different collectives"
        return (f"rank {self.rank} of {self.size}: {what} failed ({first}); {culprit}. Every rank stops; continue "
                "from the last checkpoint with robopg train --resume RUN_DIR")

    def _roll_call(self) -> list[int] | None:
        """Check in at the rendezvous store and wait up to the timeout for the others: the ranks that did not
        (a dead or hung rank never does; every live one meets the failure within that time). None: no store."""
        try:
            self.store.set(f"{self.roll_call_key}{self.rank}", "here")
            deadline = time.monotonic() + self.timeout_s
            while True:
                missing = [r for r in range(self.size) if not self.store.check([f"{self.roll_call_key}{r}"])]
                if not missing or time.monotonic() > deadline:
                    return missing
                time.sleep(0.1)
        except RuntimeError:
            return None

    def broadcast_module(self, module: nn.Module) -> None:
        with torch.no_grad():
            for tensor in module.state_dict().values():  # detached views of the parameters and buffers
                self._run("broadcasting the parameters", dist.broadcast, tensor, src=0)

    def average_gradients(self, params: Sequence[nn.Parameter]) -> None:
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])  # one all-reduce per step, not one per tensor
        self._run("averaging the gradients", dist.all_reduce, flat)
        flat /= self.size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def average(self, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.detach().clone()
        self._run("averaging a statistic", dist.all_reduce, total)
        return total / self.size

    def mean(self, value: float) -> float:
        return self.average(torch.tensor(float(value), dtype=torch.float64, device=self.device)).item()

    def minimum(self, value: int) -> int:
        t = torch.tensor(int(value), dtype=torch.int64, device=self.device)
        self._run("comparing a count", dist.all_reduce, t, op=dist.ReduceOp.MIN)
        return int(t.item())

    def gather_moments(self, count: Any, mean: torch.Tensor, var: torch.Tensor) -> list[tuple[Any, ...]]:
        packed = torch.cat([torch.as_tensor(count, dtype=torch.float64, device=mean.device).reshape(1),
                            mean.to(torch.float64), var.to(torch.float64)])
        parts = [torch.empty_like(packed) for _ in range(self.size)]
        self._run("merging the normaliser statistics", dist.all_gather, parts, packed)
        dim = mean.shape[0]
        return [(p[0], p[1:1 + dim], p[1 + dim:]) for p in parts]

    def gather(self, value: Any) -> list[Any]:
        out: list[Any] = [None] * self.size
        self._run("exchanging the iteration's episodes", dist.all_gather_object, out, value, group=self.objects)
        return out

    def pool(self, metrics: dict[str, float], stats: Any) -> dict[str, float]:
        parts = self.gather((metrics, *(getattr(stats, k) for k in _EPISODE_LISTS + _EPISODE_DICTS)))
        for i, name in enumerate(_EPISODE_LISTS, start=1):
            setattr(stats, name, [x for part in parts for x in part[i]])
        for i, name in enumerate(_EPISODE_DICTS, start=1 + len(_EPISODE_LISTS)):
            merged: dict[str, list[float]] = {}
            for part in parts:
                for key, values in part[i].items():
                    merged.setdefault(key, []).extend(values)
            setattr(stats, name, merged)
        return {key: float(np.mean([part[0][key] for part in parts])) for key in metrics}

    def drain_sync_seconds(self) -> dict[str, float]:
        seconds, self.sync_seconds = self.sync_seconds, 0.0
        return {"sync_seconds": seconds}

    def with_rank_states(self, state: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
        ranks = self.gather({key: state[key] for key in keys})
        return {**state, WORLD_KEY: self.size, RANKS_KEY: ranks}

    def own_rank_state(self, state: dict[str, Any], source: str) -> dict[str, Any]:
        saved = int(state.get(WORLD_KEY, 1))
        if saved != self.size:
            trained = "in one process" if saved == 1 else f"on {saved} ranks"
            how = "without torchrun" if saved == 1 else f"with {saved} ranks (--nproc-per-node {saved})"
            raise ValueError(f"{source} was trained {trained} and this run has {self.size} ranks; each rank resumes "
                             f"its own generators and environments. Fix: resume it {how}")
        return {**state, **state[RANKS_KEY][self.rank]}

    def shutdown(self) -> None:
        """Leave the process group together: a barrier first, so no rank closes its connections while another
        still exchanges with it. (How the rank process then exits: ``end_process``.)"""
        self._run("waiting for every rank to finish", dist.barrier, group=self.objects)
        dist.destroy_process_group()


_world: Local = Local(torch.device("cpu"))


def setup(cfg: RunConfig) -> Local:
    """This process's place in the run, decided once: under torchrun (WORLD_SIZE > 1) it joins the process group
    (the first call; later ones return the same); otherwise ``Local`` on ``cfg.device``."""
    global _world
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and isinstance(_world, ProcessGroup):
        return _world
    if size > 1 and cfg.algo is Algo.A3C:
        raise ValueError("a3c's workers share one machine's memory (Hogwild) and cannot span torchrun ranks. Fix: "
                         "run a3c without torchrun (--a3c-workers sets its processes), or --algo a2c under torchrun")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(cfg.device, local_rank if size > 1 else None)
    if size > 1:
        _world = ProcessGroup(device, int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
                              cfg.dist_timeout)
    else:
        _world = Local(device)
    return _world


def _device(device: Device, local_rank: int | None) -> torch.device:
    if device is Device.CPU:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"--device cuda, but torch {torch.__version__} sees no CUDA GPU. Fix: --device cpu, or "
                         "install a CUDA build of torch on a machine with a GPU")
    if local_rank is None:
        return torch.device("cuda")
    if local_rank >= torch.cuda.device_count():
        raise ValueError(f"local rank {local_rank} needs GPU {local_rank}, but this node has "
                         f"{torch.cuda.device_count()}. Fix: --nproc-per-node {torch.cuda.device_count()} (one rank per GPU)")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def end_process(code: int) -> NoReturn:
    """Exit a torchrun rank with ``code`` once its work is done, files closed and the group left: flush the
    streams and ``os._exit``, skipping interpreter finalisation. There, about 1 rank exit in 40 aborted with
    "terminate called without an active exception" (SIGABRT, no Python frame left) on torch 2.13 with gloo, and
    torchrun then fails the whole finished run. Outside torchrun this is ``SystemExit``."""
    if isinstance(_world, ProcessGroup):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def world() -> Local:
    """The process's place in the run (``Local`` until ``setup`` joins a process group): what the algorithms and
    the normaliser call their collectives on."""
    return _world

