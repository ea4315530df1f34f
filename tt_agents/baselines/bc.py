"""Behaviour cloning, plain (:class:`BCAgent`) and goal-conditioned with hindsight goals (:class:`GoalBCAgent`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from .._io import make_progress
from .._validation import as_python_number, as_widths
from ..data_loading import Episode, load_episodes
from ..spaces import check_flat_box, space_from_dict, space_to_dict
from .base import BaselineAgent, seeded_init
from .networks import CategoricalPolicy, SquashedPolicy
from .transitions import transitions_from_episodes


def _batch_sampler(n: int, batch_size: int, seed: int) -> Callable[[], torch.Tensor]:
    """A function drawing ``batch_size`` indices below ``n`` (with replacement) from a generator seeded by ``seed``."""
    generator = torch.Generator().manual_seed(as_python_number(seed))

    def sample() -> torch.Tensor:
        return torch.randint(n, (batch_size,), generator=generator)

    return sample


class BCAgent(BaselineAgent):
    """Behaviour cloning: a deterministic MLP policy fitted to the dataset's actions.

    For Box actions the network is ``hidden`` ReLU layers with a tanh output rescaled to the action bounds (so
    actions are always valid); the loss is the mean squared error to the dataset action in the environment's
    units. For a Discrete space it outputs one logit per action, is trained with cross-entropy and acts with the
    most likely action. Observations are standardised with the dataset's mean/std (stored in the model).

    Args:
        observation_space: the environment's flat Box, a Discrete (read one-hot), or a Dict of flat Boxes
            (nested Dicts too; entries concatenated in key order, like ``gymnasium.wrappers.FlattenObservation``).
        action_space: flat Box action space with finite bounds, or a ``Discrete(n)``.
        hidden: hidden layer widths.
        learning_rate: Adam learning rate.
        normalize_observations: standardise observations with the dataset statistics.
        seed: seed of the weight initialisation.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
    """

    kind = "BCAgent"

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        hidden: Sequence[int] = (256, 256),
        *,
        learning_rate: float = 3e-4,
        normalize_observations: bool = True,
        seed: int = 0,
        device: str | torch.device = "auto",
    ) -> None:
        widths = as_widths(hidden)
        if not isinstance(widths, tuple) or not all(isinstance(h, int) and not isinstance(h, bool) for h in widths):
            raise TypeError(f"hidden must be a sequence of int widths, got {hidden!r}")
        if not widths or min(widths) < 1:
            raise ValueError(f"hidden must be a non-empty sequence of widths >= 1, got {hidden!r}")
        learning_rate = as_python_number(learning_rate)
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float):
            raise TypeError(f"learning_rate must be a number, got {learning_rate!r}")
        if not 0 < learning_rate < math.inf:
            raise ValueError(f"learning_rate must be finite and > 0, got {learning_rate!r}")
        super().__init__(observation_space, action_space, device)
        self.hidden = widths
        self.learning_rate = float(learning_rate)
        self.normalize_observations = normalize_observations
        self.seed = as_python_number(seed)  # a NumPy seed saved as JSON
        self.policy = seeded_init(self.seed, lambda: self._policy_network().to(self.device))
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=learning_rate)
        self._fitted_normalizer = False

    def _policy_network(self) -> SquashedPolicy | CategoricalPolicy:
        if self.discrete_actions:
            return CategoricalPolicy(self.observation_dim, int(self.action_space.n), self.hidden)
        low, high = self.action_space.low.astype(np.float32), self.action_space.high.astype(np.float32)
        return SquashedPolicy(self.observation_dim, low, high, self.hidden)

    def loss(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """For ``observations`` (B, O): the mean squared error of the policy's actions to ``actions`` (B, A), or
        for Discrete actions the cross-entropy of its logits to ``actions`` (B, 1) (the categories)."""
        if self.discrete_actions:
            return torch.nn.functional.cross_entropy(self.policy(observations), actions[:, 0].long())
        return (self.policy(observations) - actions).square().sum(-1).mean()

    def fit(
        self, dataset: Any, n_steps: int, batch_size: int = 256, seed: int = 0, show_progress: bool = True
    ) -> BCAgent:
        """Train for ``n_steps`` Adam steps on (observation, action) pairs.

        Args:
            dataset: anything :func:`tt_agents.data_loading.load_episodes` reads (Minari id, dataset, episodes).
            n_steps: gradient steps.
            batch_size: pairs per step (sampled uniformly with replacement).
            seed: seed of the batch sampling.
            show_progress: rich progress bar with the loss.

        Returns:
            ``self`` (losses are appended to :attr:`history`).
        """
        if n_steps < 1 or batch_size < 1:
            raise ValueError(f"n_steps and batch_size must be >= 1, got {n_steps} and {batch_size}")
        data = transitions_from_episodes(
            self._episodes(dataset), self.observation_dim, self.action_dim, need_next=False
        )
        if self.normalize_observations and not self._fitted_normalizer:
            self.policy.normalizer.fit(data.observations)
            self._fitted_normalizer = True
        observations = torch.as_tensor(data.observations, device=self.device)  # (N, O)
        actions = torch.as_tensor(self._training_actions(data.actions), device=self.device)  # (N, A)
        sample = _batch_sampler(len(observations), batch_size, seed)
        self.policy.train()
        losses: list[float] = []
        pending: list[torch.Tensor] = []  # this stretch's losses, on the device until the next host read
        with make_progress(show=show_progress) as progress:
            task = progress.add_task("BC", total=n_steps)
            for step in range(n_steps):
                index = sample().to(self.device)  # (B,)
                loss = self.loss(observations[index], actions[index])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                pending.append(loss.detach())
                if (step + 1) % 50 == 0 or step + 1 == n_steps:
                    losses += torch.stack(pending).cpu().tolist()
                    pending.clear()
                    progress.update(task, completed=step + 1, description=f"BC loss {losses[-1]:.4f}")
        self.history += [{"loss": value} for value in losses]
        self.policy.eval()
        return self

    @torch.no_grad()
    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3 ``predict``: (O,) → (A,) or (n_envs, O) → (n_envs, A) actions inside the action space.

        ``state`` and ``episode_start`` are accepted for the SB3 contract and ignored (the policy is
        memoryless); the policy is deterministic whatever ``deterministic`` says.
        """
        observations, single = self._observations(observation)
        actions = self.policy(observations)  # (B, A), or (B, n) logits
        return self._finish_actions(actions.argmax(-1) if self.discrete_actions else actions, single), None

    def _state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "settings": {
                "hidden": list(self.hidden),
                "learning_rate": self.learning_rate,
                "normalize_observations": self.normalize_observations,
                "seed": self.seed,
                "fitted_normalizer": self._fitted_normalizer,
            },
            "modules": {"policy": self.policy.state_dict()},
            "optimizers": {"policy": self.optimizer.state_dict()},
        }

    @classmethod
    def _from_state(cls, state: Mapping[str, Any], device: str | torch.device) -> BCAgent:
        settings = dict(state["settings"])
        fitted = bool(settings.pop("fitted_normalizer"))
        agent = cls(
            space_from_dict(state["observation_space"]),
            space_from_dict(state["action_space"]),
            settings.pop("hidden"),
            device=device,
            **settings,
        )
        agent.policy.load_state_dict(state["modules"]["policy"])
        agent.optimizer.load_state_dict(state["optimizers"]["policy"])
        agent._fitted_normalizer = fitted
        agent.policy.eval()
        return agent


class GoalBCAgent(BCAgent):
    """Goal-conditioned behaviour cloning: :class:`BCAgent` on ``concat(observation, goal)``.

    Training uses hindsight relabelling, like the Trajectory Transformer's goal mode: every step of an episode
    is paired with the episode's goal, its final ``achieved_goal``. Acting reads Dict observations
    (``observation`` and ``desired_goal``, single or batched) and conditions on ``desired_goal``.

    Args:
        observation_space: a goal-env ``Dict`` with flat Box ``observation`` and ``desired_goal`` entries;
            :attr:`input_space` is the flat Box of ``concat(observation, desired_goal)``.
        action_space, hidden, learning_rate, normalize_observations, seed, device: as for :class:`BCAgent`.
    """

    kind = "GoalBCAgent"

    @property
    def goal_dim(self) -> int:
        """The size of ``desired_goal``."""
        return int(self.observation_space["desired_goal"].shape[0])

    @staticmethod
    def _input_space(observation_space: spaces.Space) -> tuple[spaces.Box, None]:
        """The flat Box of ``concat(observation, desired_goal)`` for a goal-env Dict observation space."""
        if not isinstance(observation_space, spaces.Dict):
            raise TypeError(f"GoalBCAgent needs a Dict observation space (a goal env), got {observation_space}")
        missing = {"observation", "desired_goal"} - set(observation_space.spaces)
        if missing:
            raise TypeError(
                f"the Dict observation space needs keys 'observation' and 'desired_goal'; missing {missing}"
            )
        parts = [observation_space["observation"], observation_space["desired_goal"]]
        check_flat_box(parts[0], "observation_space['observation']")
        check_flat_box(parts[1], "observation_space['desired_goal']")
        low = np.concatenate([p.low for p in parts]).astype(np.float32)
        high = np.concatenate([p.high for p in parts]).astype(np.float32)
        return spaces.Box(low=low, high=high, dtype=np.float32), None

    def _episodes(self, dataset: Any) -> list[Episode]:
        episodes = load_episodes(dataset, observation_key="observation", goal_key="achieved_goal")
        relabelled = []
        for episode in episodes:
            assert episode.goal is not None
            goals = np.repeat(episode.goal[None], len(episode), axis=0)  # (T, G): the hindsight goal
            inputs = np.concatenate([episode.observations, goals], axis=1)  # (T, O + G)
            relabelled.append(Episode(inputs, episode.actions, episode.rewards, episode.terminated))
        return relabelled

    def _flat_observations(self, observation: Any) -> np.ndarray:
        """``concat(observation, desired_goal)``: (O + G,) or (n_envs, O + G)."""
        if not isinstance(observation, Mapping) or not {"observation", "desired_goal"} <= set(observation):
            raise TypeError("GoalBCAgent expects a Dict observation with 'observation' and 'desired_goal'")
        obs = np.asarray(observation["observation"], dtype=np.float32)
        goal = np.asarray(observation["desired_goal"], dtype=np.float32)
        if obs.ndim != goal.ndim:
            raise ValueError(f"observation {obs.shape} and desired_goal {goal.shape} must be batched alike")
        return np.concatenate([obs, goal], axis=-1)
