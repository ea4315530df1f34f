"""Implicit Q-Learning (Kostrikov, Nair & Levine, 2021): :class:`IQLConfig` and :class:`IQLAgent`."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from .._io import make_progress
from .._validation import as_python_number
from ..qfunctions import IQLQFunction
from ..spaces import space_from_dict, space_to_dict
from .base import BaselineAgent, one_hot_categories, seeded_init
from .checkpoint import read_checkpoint, write_checkpoint
from .iql_config import IQLConfig
from .networks import ActionScaler, CategoricalActor, GaussianActor, Normalizer, TwinQ, ValueNetwork
from .transitions import Transitions, transitions_from_episodes


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """IQL's asymmetric L2 loss ``mean(|expectile - 1(diff < 0)| * diff**2)`` of ``diff = Q - V``."""
    weight = torch.where(diff > 0, expectile, 1.0 - expectile)
    return (weight * diff.square()).mean()


class IQLAgent(BaselineAgent):
    """Implicit Q-Learning: expectile V, twin Q with a target network, advantage-weighted policy extraction.

    Each gradient step (in the authors' order): V ← expectile regression on ``min(Q_target(s, a))``; the
    policy maximises ``exp(beta * (min Q_target(s, a) - V(s)))`` (clipped) times ``log pi(a | s)``; Q ← MSE to
    ``r + gamma * (1 - terminal) * V(s')``; then Polyak averaging of the target Q. Next observations come from
    ``observations[t + 1]`` and each episode's ``final_observation`` (a truncated episode without one loses its
    last step); only true terminals stop the bootstrap.

    With a ``Discrete(n)`` action space the critic reads actions one-hot and the policy is a softmax over ``n``
    logits, trained with the same advantage weights; deterministic actions are the most likely ones.

    Args:
        observation_space: the environment's flat Box, a Discrete (read one-hot), or a Dict of flat Boxes
            (nested Dicts too; entries concatenated in key order, like ``gymnasium.wrappers.FlattenObservation``).
        action_space: a flat Box with finite bounds (the Gaussian policy works in ``[-1, 1]``), or a
            ``Discrete(n)`` (a categorical policy).
        config: hyperparameters.
        seed: seed of the weight initialisation and of stochastic actions.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
    """

    kind = "IQLAgent"

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box | spaces.Discrete,
        config: IQLConfig | None = None,
        *,
        seed: int = 0,
        device: str | torch.device = "auto",
    ) -> None:
        if config is not None and not isinstance(config, IQLConfig):
            raise TypeError(
                f"config must be an IQLConfig (e.g. IQLConfig(expectile=0.9) or IQLConfig.antmaze()), got {config!r}"
            )
        super().__init__(observation_space, action_space, device)
        self.config = config or IQLConfig()
        self.seed = as_python_number(seed)  # a NumPy seed saved as JSON
        o, hidden = self.observation_dim, self.config.hidden
        a = int(action_space.n) if self.discrete_actions else self.action_dim  # the critic's action input

        def build() -> tuple[nn.Module, ...]:
            normalizer = Normalizer(o)
            critic = TwinQ(o, a, hidden, normalizer)
            value = ValueNetwork(o, hidden, normalizer)
            actor = (
                CategoricalActor(o, a, hidden, normalizer)
                if self.discrete_actions
                else GaussianActor(o, a, hidden, normalizer)
            )
            return normalizer, critic, value, actor

        built = seeded_init(self.seed, build)
        self.normalizer, self.critic, self.value_net, self.actor = (m.to(self.device) for m in built)
        self.target_critic = TwinQ(o, a, hidden, self.normalizer).to(self.device)
        self.target_critic.load_state_dict(self.critic.state_dict())
        self.target_critic.requires_grad_(False)
        self.scaler = None if self.discrete_actions else ActionScaler(action_space.low, action_space.high)
        if self.scaler is not None:
            self.scaler.to(self.device)
        """Maps Box actions to the Gaussian policy's ``[-1, 1]`` (None for Discrete actions)."""
        self.critic_optimizer = torch.optim.Adam(self._own(self.critic), lr=self.config.critic_lr)
        self.value_optimizer = torch.optim.Adam(self._own(self.value_net), lr=self.config.value_lr)
        self.actor_optimizer = torch.optim.Adam(self._own(self.actor), lr=self.config.actor_lr)
        self.reward_scale = 1.0
        """Factor the training rewards were multiplied by (1 without reward normalisation)."""
        self._fitted_data = False
        self._generator = torch.Generator(device=self.device).manual_seed(self.seed)

    @staticmethod
    def _own(module: nn.Module) -> list[nn.Parameter]:
        """Trainable parameters of ``module`` (the shared normalizer has buffers only)."""
        return [p for p in module.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ training

    def _prepare(self, data: Transitions) -> None:
        """Reward scale and observation statistics from the first dataset the agent is fitted on."""
        if self._fitted_data:
            return
        if self.config.normalize_rewards:
            spread = float(data.episode_returns.max() - data.episode_returns.min())
            self.reward_scale = self.config.reward_range / spread if spread > 1e-8 else 1.0
        if self.config.normalize_observations:
            self.normalizer.fit(data.observations)
        self._fitted_data = True

    def update(self, batch: Mapping[str, torch.Tensor], actor_lr: float | None = None) -> dict[str, torch.Tensor]:
        """One IQL gradient step on ``batch`` (keys ``observations`` (B, O), ``actions`` (B, A) in the environment's
        units (for Discrete actions (B, 1), the categories), ``rewards``
        (B,) already scaled by :attr:`reward_scale` and shifted by ``config.reward_shift``,
        ``next_observations`` (B, O), ``terminals`` (B,)).

        Returns:
            Detached scalar losses ``value_loss``, ``actor_loss``, ``critic_loss`` and the mean advantage
            weight ``weight``.
        """
        cfg = self.config
        obs, act = batch["observations"], batch["actions"]
        critic_act = self.network_actions(act)  # (B, A'): one-hot for Discrete actions
        with torch.no_grad():
            target_q = torch.minimum(*self.target_critic(obs, critic_act))  # (B,)

        value = self.value_net(obs)  # (B,)
        value_loss = expectile_loss(target_q - value, cfg.expectile)
        self.value_optimizer.zero_grad(set_to_none=True)
        value_loss.backward()
        self.value_optimizer.step()

        with torch.no_grad():
            advantage = target_q - self.value_net(obs)  # (B,)
            weight = torch.exp(cfg.temperature * advantage).clamp(max=cfg.max_weight)
        policy_act = act if self.scaler is None else self.scaler.normalize(act)
        actor_loss = -(weight * self.actor.log_prob(obs, policy_act)).mean()
        if actor_lr is not None:
            for group in self.actor_optimizer.param_groups:
                group["lr"] = actor_lr
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()

        with torch.no_grad():
            next_value = self.value_net(batch["next_observations"])  # (B,)
            target = batch["rewards"] + cfg.discount * (1.0 - batch["terminals"]) * next_value
        q1, q2 = self.critic(obs, critic_act)
        critic_loss = (q1 - target).square().mean() + (q2 - target).square().mean()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        with torch.no_grad():
            for target_param, param in zip(self.target_critic.parameters(), self.critic.parameters(), strict=True):
                target_param.lerp_(param, cfg.polyak)
        return {
            "value_loss": value_loss.detach(),
            "actor_loss": actor_loss.detach(),
            "critic_loss": critic_loss.detach(),
            "weight": weight.mean(),
        }

    def fit(
        self,
        dataset: Any,
        n_steps: int,
        batch_size: int | None = None,
        seed: int = 0,
        show_progress: bool = True,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 10_000,
    ) -> IQLAgent:
        """Train for ``n_steps`` IQL steps (the paper: 1M).

        Args:
            dataset: anything :func:`tt_agents.data_loading.load_episodes` reads (Minari id, dataset, episodes).
            n_steps: gradient steps.
            batch_size: transitions per step (default ``config.batch_size``).
            seed: seed of the batch sampling.
            show_progress: rich progress bar with the losses.
            checkpoint: a folder where the run is saved (as by :meth:`save_pretrained`, with the run's progress)
                every ``checkpoint_every`` steps; a later ``fit`` with the same folder, ``n_steps``, ``batch_size``
                and ``seed`` continues from it and ends with the same networks as an uninterrupted run on CPU.
                :meth:`load` reads it as any checkpoint.
            checkpoint_every: steps between checkpoints.

        Returns:
            ``self`` (losses of this call are appended to :attr:`history`). The reward scale and observation
            statistics are set by the first ``fit`` and kept afterwards.
        """
        batch_size = batch_size or self.config.batch_size
        if n_steps < 1 or batch_size < 1:
            raise ValueError(f"n_steps and batch_size must be >= 1, got {n_steps} and {batch_size}")
        data = transitions_from_episodes(self._episodes(dataset), self.observation_dim, self.action_dim, need_next=True)
        self._prepare(data)
        tensors = {
            "observations": data.observations,
            "actions": self._training_actions(data.actions),
            "rewards": data.rewards * np.float32(self.reward_scale) + np.float32(self.config.reward_shift),
            "next_observations": data.next_observations,
            "terminals": data.terminals,
        }
        tensors = {k: torch.as_tensor(v, dtype=torch.float32, device=self.device) for k, v in tensors.items()}
        seed = as_python_number(seed)  # a NumPy seed, kept as JSON in the run's fingerprint
        generator = torch.Generator().manual_seed(seed)
        run = {"n_steps": n_steps, "batch_size": batch_size, "seed": seed}
        start = self._resume(checkpoint, run, generator)
        history: list[dict[str, float]] = []
        pending: list[dict[str, torch.Tensor]] = []  # this stretch's losses, on the device until the next host read
        for module in (self.critic, self.value_net, self.actor):
            module.train()
        with make_progress(show=show_progress) as progress:
            task = progress.add_task("IQL", total=n_steps, completed=start)
            for step in range(start, n_steps):
                actor_lr = None
                if self.config.actor_cosine_schedule:
                    actor_lr = self.config.actor_lr * 0.5 * (1.0 + math.cos(math.pi * step / n_steps))
                index = torch.randint(len(data.rewards), (batch_size,), generator=generator).to(self.device)
                pending.append(self.update({k: v[index] for k, v in tensors.items()}, actor_lr))
                if checkpoint is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == n_steps):
                    self._save_run(checkpoint, {**run, "step": step + 1}, generator)
                if (step + 1) % 50 == 0 or step + 1 == n_steps:
                    stacked = {k: torch.stack([h[k] for h in pending]).cpu().tolist() for k in pending[0]}
                    history += [{k: stacked[k][i] for k in stacked} for i in range(len(pending))]
                    pending.clear()
                    last = history[-1]
                    progress.update(
                        task,
                        completed=step + 1,
                        description=(
                            f"IQL Q {last['critic_loss']:.3f} V {last['value_loss']:.3f} pi {last['actor_loss']:.3f}"
                        ),
                    )
        self.history += history
        for module in (self.critic, self.value_net, self.actor):
            module.eval()
        return self

    def _resume(
        self, checkpoint: str | os.PathLike[str] | None, run: dict[str, int], generator: torch.Generator
    ) -> int:
        """The step to start from: 0, or that of ``checkpoint`` (whose state is loaded) when it exists; a legacy
        single-file checkpoint is read too, and the next save replaces it with a folder."""
        if checkpoint is None or not Path(checkpoint).exists():
            return 0
        data = read_checkpoint(checkpoint, self.kind)
        saved = data.get("fit_progress")
        if saved is None or {k: saved[k] for k in run} != run:
            raise ValueError(
                f"{checkpoint} is not a checkpoint of this run ({run}); it holds "
                f"{ {k: saved[k] for k in run} if saved else 'no fit progress' }: use another path or delete it"
            )
        self._restore(data)
        generator.set_state(data["tensors"]["fit_generator"])
        return int(saved["step"])

    def _save_run(
        self, checkpoint: str | os.PathLike[str], progress: dict[str, int], generator: torch.Generator
    ) -> None:
        """Save the agent to ``checkpoint`` with the run's ``progress`` and its batch generator's state."""
        state = self._state()
        state["fit_progress"] = progress
        state["tensors"] = {"fit_generator": generator.get_state()}
        write_checkpoint(checkpoint, state, replace_file=True)  # the file, if any, was read by _resume

    # ------------------------------------------------------------------ acting and values

    @torch.no_grad()
    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3 ``predict``: (O,) → (A,) or (n_envs, O) → (n_envs, A) actions inside the action space (for a
        Discrete space, () or (n_envs,) ints).

        Deterministic actions are the policy mean, or the most likely category (how IQL is evaluated); otherwise
        a sample from the policy with the agent's seeded generator (Gaussian actions clipped).
        ``state``/``episode_start`` are ignored (memoryless policy).
        """
        observations, single = self._observations(observation)
        if self.discrete_actions:
            logits = self.actor(observations)  # (B, n)
            if deterministic:
                return self._finish_actions(logits.argmax(-1), single), None
            sampled = torch.multinomial(logits.softmax(-1), 1, generator=self._generator)  # (B, 1)
            return self._finish_actions(sampled[:, 0], single), None
        mean, std = self.actor(observations)
        if not deterministic:
            noise = torch.randn(mean.shape, generator=self._generator, device=self.device)
            mean = mean + std * noise
        return self._finish_actions(self.scaler.unnormalize(mean), single), None

    def network_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions in the environment's units, (R, A) on the agent's device, as the critic reads them: a Discrete
        space's categories (R, 1) one-hot (R, n), Box actions unchanged."""
        if not self.discrete_actions:
            return actions
        return one_hot_categories(actions, int(self.action_space.n))  # (R, n)

    def q_function(self) -> IQLQFunction:
        """The planner's :class:`~tt_agents.qfunctions.QFunction`: min of the twin (target) Q networks, original
        reward scale, any input device."""
        return IQLQFunction(self)

    @torch.no_grad()
    def value(self, observation: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """``V(s)`` in the original reward scale: (O,) → scalar or (B, O) → (B,); a tensor in gives a tensor
        back (on its device), anything else a numpy array."""
        if isinstance(observation, torch.Tensor):
            device = observation.device
            obs = self.network_observations(observation.to(self.device, torch.float32))
            values = self.value_net(obs.reshape(-1, self.observation_dim)) / self.reward_scale
            return values.reshape(observation.shape[:-1]).to(device)
        observations, single = self._observations(observation)
        values = (self.value_net(observations) / self.reward_scale).cpu().numpy()
        return values[0] if single else values

    # ------------------------------------------------------------------ persistence

    def _state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "config": self.config.to_dict(),
            "seed": self.seed,
            "reward_scale": self.reward_scale,
            "fitted_data": self._fitted_data,
            "modules": {
                "critic": self.critic.state_dict(),
                "target_critic": self.target_critic.state_dict(),
                "value": self.value_net.state_dict(),
                "actor": self.actor.state_dict(),
            },
            "optimizers": {
                "critic": self.critic_optimizer.state_dict(),
                "value": self.value_optimizer.state_dict(),
                "actor": self.actor_optimizer.state_dict(),
            },
        }

    def _restore(self, data: Mapping[str, Any]) -> None:
        self.critic.load_state_dict(data["modules"]["critic"])
        self.target_critic.load_state_dict(data["modules"]["target_critic"])
        self.value_net.load_state_dict(data["modules"]["value"])
        self.actor.load_state_dict(data["modules"]["actor"])
        self.critic_optimizer.load_state_dict(data["optimizers"]["critic"])
        self.value_optimizer.load_state_dict(data["optimizers"]["value"])
        self.actor_optimizer.load_state_dict(data["optimizers"]["actor"])
        self.reward_scale = float(data["reward_scale"])
        self._fitted_data = bool(data["fitted_data"])

    @classmethod
    def _from_state(cls, state: Mapping[str, Any], device: str | torch.device) -> IQLAgent:
        agent = cls(
            space_from_dict(state["observation_space"]),
            space_from_dict(state["action_space"]),
            IQLConfig.from_dict(state["config"]),
            seed=state["seed"],
            device=device,
        )
        agent._restore(state)
        for module in (agent.critic, agent.value_net, agent.actor):
            module.eval()
        return agent
