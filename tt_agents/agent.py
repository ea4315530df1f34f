"""The policy object users work with: fit on a dataset, plan actions, save and load.

``TrajectoryTransformerAgent`` follows Stable-Baselines3's ``predict`` contract so that SB3's
``evaluate_policy`` works unchanged; the per-environment context (past transitions) travels in ``state``.
"""

from __future__ import annotations

import os
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium import spaces

from ._io import CheckpointError
from .agent_state import AgentState, EnvContext
from .checkpoints import CONFIG_FILE, AgentCheckpoint, load_model, read_checkpoint, write_checkpoint
from .config import AgentConfig, PlannerConfig, TrainConfig
from .data_loading import TrajectoryData, WindowDataset, load_episodes, load_minari_dataset
from .distributed import init_distributed
from .inputs import (
    check_budget,
    check_categories_fit_the_bins,
    check_data_actions,
    check_data_maps,
    check_data_observations,
    check_q_function_request,
    checked_reward,
    dataset_info,
    episode_starts,
    steps_for,
    warn_about_data,
    warn_about_observations_far_outside,
    warn_about_terminal_rewards,
    with_map_shape,
)
from .layout import TransitionLayout
from .model import TrajectoryGPT
from .observation_reader import ObservationReader
from .planner import BeamPlanner, Plan, PlanningContext
from .qfunctions import QFunction, as_q_function
from .spaces import (
    MAP_KEY,
    DictKey,
    actions_in_space,
    flatten_space,
    map_rows,
    map_shape,
    resolve_device,
    without_map,
)
from .tokenizer import Tokenizer
from .train import Trainer, TrainHistory
from .training_device import check_training_memory

if TYPE_CHECKING:
    from .baselines import IQLConfig


def _check_iql_config(iql_config: Any, q_function: Any) -> None:
    """An error before any training for settings of an IQL run that ``fit`` will not make, or that are not an
    ``IQLConfig``."""
    if iql_config is None:
        return
    from .baselines import IQLConfig

    if not (isinstance(q_function, str) and q_function == "iql"):
        raise ValueError("iql_config is for fit(..., q_function='iql'), which trains IQL on the same data")
    if not isinstance(iql_config, IQLConfig):
        raise TypeError(f"iql_config must be an IQLConfig (e.g. IQLConfig.antmaze()), got {iql_config!r}")


class TrajectoryTransformerAgent:
    """Trajectory Transformer agent: a GPT over discretized transitions, acting by beam search.

    Args:
        observation_space: a flat ``Box``, a ``Discrete(n)`` (one observation token holding the state's number,
            ``n <= config.tokenizer.n_bins``), a 1-D ``MultiDiscrete`` or ``MultiBinary`` (a token per entry
            holding its category), or a ``Dict`` of flat Boxes (Dicts nested in it too). In goal mode
            (``config.planner.mode == "goal"``) the Dict needs ``observation`` and ``desired_goal`` (and
            ``achieved_goal`` in the data) and the goal is prepended to the sequence; in the other modes a Dict
            observation is used whole, its entries concatenated in key order, depth first (as
            ``gymnasium.wrappers.FlattenObservation`` does; the agent also acts on that flat row). Outside goal
            mode a ``Tuple`` is taken too, and Dict or Tuple entries that are categorical (``Discrete``, 1-D
            ``MultiDiscrete``, ``MultiBinary``) are a token per category variable, not one-hot. A ``map``
            entry (a 2-D Box of integer cells) is read by the map encoder instead (paper Appendix F).
        action_space: a flat ``Box``, a ``Discrete(n)`` (one action token holding the category, not
            discretized, acted on with its most likely value in ``imitation`` mode), or a 1-D ``MultiDiscrete``
            or ``MultiBinary`` (a token per entry, each like a Discrete's).
        config: all settings (defaults: the paper's); see :func:`tt_agents.config.cpu_preset`.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
        q_function: for ``q`` mode: a callable ``q(observations, actions) -> values`` on torch tensors, an SB3
            SAC/TD3 model (its critic), or an :class:`~tt_agents.baselines.IQLAgent`; or train IQL on the
            training data with ``fit(..., q_function="iql")``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        config: AgentConfig | None = None,
        device: str | torch.device = "auto",
        q_function: QFunction | None = None,
    ) -> None:
        if config is not None and not isinstance(config, AgentConfig):
            raise TypeError(
                "config must be an AgentConfig (e.g. cpu_preset() or AgentConfig.from_dict(d)), "
                f"got {type(config).__name__}"
            )
        self.config = with_map_shape(config or AgentConfig(), map_shape(observation_space))
        self.observation_space = observation_space
        self.action_space = action_space
        self.device = resolve_device(device)
        self._reader = ObservationReader.from_spaces(
            observation_space, action_space, self.config.planner.mode == "goal"
        )
        check_categories_fit_the_bins(
            self.config.tokenizer.n_bins, self.observation_space, self.action_space, self._reader.columns
        )
        self.q_function: QFunction | None = as_q_function(q_function) if q_function is not None else None
        self.iql: Any = None
        """The IQL agent trained by ``fit(..., q_function="iql")`` (saved with the checkpoint)."""
        self.last_plan: Plan | None = None
        """The plan behind the last action (decoded states, actions, rewards, values of the best beam)."""
        self.tokenizer: Tokenizer | None = None
        self.model: TrajectoryGPT | None = None
        self.history: TrainHistory | None = None
        self.dataset_info: dict[str, Any] = {}
        self._planner: BeamPlanner | None = None
        self._budget: tuple[TrainConfig, TrainConfig] | None = None  # (config.train before the last fit, after it)
        self._act_state = AgentState.new(1)
        self._seed: int | None = self.config.planner.seed
        self._warned_far_outside = False  # an observation far outside the training data's range was warned about

    # ---- spaces --------------------------------------------------------------------------------------

    @property
    def goal_conditioned(self) -> bool:
        return self.layout.goal_dim > 0

    @property
    def layout(self) -> TransitionLayout:
        """Where the observation, action, reward, reward-to-go (and goal) columns sit in a transition."""
        return self._reader.layout

    @property
    def observation_keys(self) -> tuple[DictKey, ...] | None:
        """Outside goal mode, the keys of a Dict or Tuple observation space, concatenated in this order (else None)."""
        return self._reader.keys

    # ---- training ------------------------------------------------------------------------------------

    def fit(
        self,
        dataset: Any,
        n_steps: int | None = None,
        *,
        n_epochs: float | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        resume: bool = True,
        seed: int | None = None,
        show_progress: bool = True,
        q_function: Any = None,
        q_steps: int = 100_000,
        iql_config: IQLConfig | None = None,
    ) -> TrajectoryTransformerAgent:
        """Train on ``dataset``: a Minari dataset id, a ``minari.MinariDataset``, or a list of episodes.

        Every call fits the tokenizer and trains a new network on ``dataset``. To train an interrupted or finished run
        longer, call again with the same data, settings and ``checkpoint_dir`` and a larger budget: it continues from
        the last checkpoint (the learning-rate schedule then follows the new budget).

        Under ``torchrun --nproc_per_node N`` the run is data-parallel (DistributedDataParallel: the batch split
        across the processes, the first one alone writing checkpoints and logs); save the agent from that process
        only (``tt_agents.distributed.distributed_rank_and_size()[0] == 0``).

        Args:
            n_steps: gradient steps, exactly (default ``config.train.n_steps``, at least ``min_epochs`` passes).
                After ``fit``, ``config.train`` holds the steps trained (and is saved so); a later ``fit`` of the
                same agent starts again from the budget that was asked (the preset's, or ``n_steps``/``n_epochs``
                of that call only), unless ``config.train`` was changed in between; an agent loaded with
                :meth:`from_pretrained` starts from the steps it was trained for.
            n_epochs: the budget in passes over the training windows instead of steps (default
                ``config.train.n_epochs``); ``n_steps`` wins when both are given.
            checkpoint_dir: where a resumable training checkpoint is kept; a rerun with the same directory
                continues from the last checkpoint when ``resume`` (a checkpoint of another run is an error).
            log_dir: where the training metrics go (``metrics.csv``, and TensorBoard events where ``tensorboard``
                is installed); plot them with :func:`tt_agents.training_log.plot_training_log`.
            seed: overrides ``config.train.seed``; the same seed gives the same model on CPU.
            q_function: ``"iql"`` trains IQL (``q_steps`` gradient steps, ``iql_config`` settings: the IQL
                paper's locomotion ones by default, ``IQLConfig.antmaze()`` for sparse-reward mazes) on the same
                data for ``q`` mode; anything else is used as given (see the class docstring).
            iql_config: an ``IQLConfig``, only with ``q_function="iql"`` (both checked before training starts).
        """
        check_q_function_request(q_function, self.goal_conditioned, self.observation_space, self.action_space)
        _check_iql_config(iql_config, q_function)
        check_budget(n_steps=n_steps, n_epochs=n_epochs)
        self.device = init_distributed(self.device)  # under torchrun: this process's device, the process group
        train_cfg = self.config.train
        if self._budget is not None and train_cfg == self._budget[1]:  # a refit: the budget as asked, for this data
            train_cfg = self._budget[0]
        budget_asked = train_cfg
        if n_steps is not None or n_epochs is not None:
            train_cfg = replace(train_cfg, n_steps=n_steps or train_cfg.n_steps, n_epochs=None if n_steps else n_epochs)
        if seed is not None:
            train_cfg = replace(train_cfg, seed=seed)
        check_training_memory(self.config.model, self.layout, self.config.tokenizer.n_bins, train_cfg, self.device)
        goal = self.goal_conditioned
        if isinstance(dataset, str):
            dataset = load_minari_dataset(dataset)
        map_key = MAP_KEY if self.config.model.map_shape else None
        if goal:
            episodes = load_episodes(dataset, observation_key="observation", goal_key="achieved_goal", map_key=map_key)
        else:
            episodes = load_episodes(dataset, observation_key=self.observation_keys, map_key=map_key)
        check_data_actions(episodes, self.action_space)
        check_data_observations(episodes, self.observation_space, self._reader.columns)
        check_data_maps(episodes, self.config.model.map_shape, self.config.model.map_classes)
        data = TrajectoryData.from_episodes(episodes, self.config.data)
        if data.n_transitions < 2:
            raise ValueError(
                f"fit: the data holds {data.n_transitions} transition in {data.n_episodes} episode; the tokenizer and "
                "the model need at least 2 transitions"
            )
        self._check_data_layout(data.layout)
        warn_about_data(episodes, self.action_space)
        if not goal:  # goal mode plans by likelihood alone: the rewards are never scored
            warn_about_terminal_rewards(episodes, self.config.data.termination_penalty)
        self.dataset_info = dataset_info(dataset, data)

        tokenizer = Tokenizer.from_config(self.config.tokenizer).fit(data.token_columns(), self._reader.categories())
        train_part, val_part = data.split(self.config.data.validation_fraction, train_cfg.seed)
        seq = self.config.model.sequence_length
        train_windows = WindowDataset(train_part, tokenizer, seq)
        val_windows = WindowDataset(val_part, tokenizer, seq) if val_part.n_episodes else None
        train_cfg = steps_for(train_cfg, len(train_windows), asked_steps=n_steps is not None)
        self.config.train = replace(train_cfg, min_epochs=None)  # the steps trained, as saved with the agent
        self._budget = (budget_asked, self.config.train)
        self.config.model = replace(self.config.model, map_per_step=data.map_per_step)
        torch.manual_seed(train_cfg.seed)
        model = TrajectoryGPT(self.layout, tokenizer.n_bins, self.config.model, tokenizer.categorical_columns)
        trainer = Trainer(
            model, train_windows, val_windows, train_cfg, self.device, checkpoint_dir, show_progress, log_dir
        )
        self.history = trainer.train(resume=resume)
        self.tokenizer, self.model, self._planner = tokenizer, model.eval(), None
        if isinstance(q_function, str):
            from .baselines import IQLAgent

            space = without_map(self.observation_space)
            flat_space = flatten_space(space) if self.observation_keys else space
            self.iql = IQLAgent(flat_space, self.action_space, iql_config, seed=train_cfg.seed, device=self.device)
            self.iql.fit(episodes, q_steps, seed=train_cfg.seed, show_progress=show_progress)
            self.q_function = self.iql.q_function()
        elif q_function is not None:
            self.q_function = as_q_function(q_function)
        return self

    @property
    def discrete_actions(self) -> bool:
        """Whether the action space is ``Discrete``."""
        return isinstance(self.action_space, spaces.Discrete)

    @property
    def discrete_observations(self) -> bool:
        """Whether the observation space is ``Discrete``."""
        return isinstance(self.observation_space, spaces.Discrete)

    def _check_data_layout(self, data_layout: TransitionLayout) -> None:
        for name in ("observation_dim", "action_dim", "goal_dim"):
            got, expected = getattr(data_layout, name), getattr(self.layout, name)
            if got != expected:
                raise ValueError(
                    f"the dataset's {name.replace('_dim', '')} has {got} dimensions but the agent's space has "
                    f"{expected}: was the agent made for this environment?"
                )

    # ---- acting --------------------------------------------------------------------------------------

    @property
    def planner(self) -> BeamPlanner:
        """The beam-search planner (built on first use; rebuilt after :meth:`configure_planner`)."""
        if self.model is None or self.tokenizer is None:
            raise RuntimeError("the agent is not trained: call fit(dataset) or load one with from_pretrained(path)")
        if self._planner is None:
            self._planner = BeamPlanner(self.model, self.tokenizer, self.config.planner, self.q_function)
        return self._planner

    def configure_planner(self, **changes: Any) -> None:
        """Change planning settings, e.g. ``configure_planner(beam_width=32, horizon=5, mode="imitation")``."""
        settings = [f.name for f in fields(PlannerConfig)]
        unknown = sorted(set(changes) - set(settings))
        if unknown:
            raise TypeError(f"configure_planner: unknown setting(s) {unknown}; PlannerConfig's are {settings}")
        new = replace(self.config.planner, **changes)
        if (new.mode == "goal") != self.goal_conditioned:
            raise ValueError("goal mode needs a goal-conditioned agent (and a goal-conditioned agent needs goal mode)")
        self.config.planner = new
        self._planner = None
        self._seed = new.seed

    def seed(self, seed: int | None) -> None:
        """Re-seed the planner's sampling (:meth:`reset` returns to this seed)."""
        self.planner.seed(seed)
        self._seed = seed

    def reset(self) -> None:
        """Forget the context of :meth:`act` and re-seed the planner (call at the start of every episode), so
        that an episode's actions do not depend on what ran before it."""
        self._act_state = AgentState.new(1)
        if self._seed is not None and self.model is not None:
            self.planner.seed(self._seed)

    def act(self, observation: Any, reward: float | None = None, goal: np.ndarray | None = None) -> np.ndarray:
        """The action for one environment's ``observation``.

        ``reward``: the reward received for the previous action, if known (otherwise the model's prediction
        fills the context). ``goal`` overrides the observation's ``desired_goal`` in goal mode.
        """
        if goal is not None:
            if not isinstance(observation, dict):
                raise TypeError("goal= is for goal-conditioned agents with Dict observations")
            observation = {**observation, "desired_goal": goal}
        observations, _, single = self._reader.rows(observation)
        if observations.shape[0] != 1:
            raise ValueError(f"act is for one environment, got {observations.shape[0]} observations: use predict")
        self._act_state.rewards[0] = checked_reward(reward, "reward")
        actions, _ = self.predict(observation, state=self._act_state, episode_start=None)
        return actions if single else actions[0]  # a batch of one gives its one action too

    def predict(
        self,
        observation: Any,
        state: AgentState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, AgentState]:
        """Stable-Baselines3's ``predict``: actions for a single ``(obs_dim,)`` or batched ``(n_envs, obs_dim)``
        observation (a Discrete space's: one category or ``(n_envs,)`` of them; a MultiDiscrete or MultiBinary
        space's: its ints, ``(D,)`` or ``(n_envs, D)``), and the updated ``state`` holding
        each environment's context.

        ``episode_start[i]`` clears env i's context. One planner call serves the whole batch. Planning
        always samples candidate actions (that is the search); ``deterministic`` is accepted for
        compatibility, and the planner's seed makes runs repeatable.
        """
        maps = map_rows(observation, self.config.model.map_shape) if self.config.model.map_shape else None
        observations, goals, single = self._reader.rows(observation)
        n_envs = observations.shape[0]
        if maps is not None and maps.shape[0] != n_envs:
            raise ValueError(f"{maps.shape[0]} maps for {n_envs} observations")
        if state is None:
            state = AgentState.new(n_envs)
        elif not isinstance(state, AgentState):
            raise TypeError(f"state must be the AgentState that predict returned (or None to start), got {type(state)}")
        elif len(state.envs) != n_envs:
            raise ValueError(f"state does not belong to a batch of {n_envs} environments; pass state=None to start")
        starts = episode_starts(episode_start, n_envs)
        rewards = [checked_reward(r, f"state.rewards[{i}]") for i, r in enumerate(state.rewards)]
        keep = max(1, self.config.planner.max_context_transitions)
        for i, env in enumerate(state.envs):
            if starts[i]:
                state.envs[i] = EnvContext()
            else:
                env.commit(rewards[i], keep)
            state.rewards[i] = None
        context = PlanningContext(
            observations=[
                np.stack([*env.observations, obs]) for env, obs in zip(state.envs, observations, strict=True)
            ],
            actions=[np.asarray(env.actions).reshape(-1, self.layout.action_dim) for env in state.envs],
            rewards=[np.asarray(env.rewards, dtype=np.float64) for env in state.envs],
            goals=goals,
            maps=maps,
        )
        planner = self.planner
        if not self._warned_far_outside:
            bounds = self.tokenizer.edges[self.layout.observation_slice][:, [0, -1]]  # (O, 2), a copy
            bounds[[n is not None for n in self.tokenizer.categories[self.layout.observation_slice]]] = np.nan
            self._warned_far_outside = warn_about_observations_far_outside(observations, bounds, stacklevel=3)
        plan = planner.plan(context)
        actions = actions_in_space(plan.actions[:, 0], self.action_space)
        for i, env in enumerate(state.envs):
            env.pending = (observations[i], actions[i], float(plan.rewards[i, 0]))
        self.last_plan = plan
        return (actions[0] if single else actions), state

    # ---- persistence ---------------------------------------------------------------------------------

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write ``config.json``, ``tokenizer.json`` and ``model.safetensors`` (and the IQL Q-function trained
        with the agent) into directory ``path``.

        The files are staged inside ``path`` and committed through a journal
        (:func:`tt_agents._io.atomic_directory`), so an interrupted save never leaves a mix of old and new
        checkpoint files; other files already in ``path`` are kept, also when the save fails.
        """
        if self.model is None or self.tokenizer is None:
            raise RuntimeError("nothing to save: the agent is not trained")
        checkpoint = AgentCheckpoint(
            self.config,
            self.layout,
            self.observation_space,
            self.action_space,
            self.tokenizer,
            self.model.state_dict(),
            self.dataset_info,
            self.iql,
        )
        return write_checkpoint(path, checkpoint)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str], device: str | torch.device = "auto", q_function: QFunction | None = None
    ) -> TrajectoryTransformerAgent:
        """Load an agent saved with :meth:`save_pretrained`; it acts identically for the same seed.

        A Q-function trained with ``fit(..., q_function="iql")`` is restored unless ``q_function`` is given;
        any other Q-function must be passed again here.
        """
        checkpoint = read_checkpoint(path, resolve_device(device), with_iql=q_function is None)
        agent = cls(checkpoint.observation_space, checkpoint.action_space, checkpoint.config, device, q_function)
        if checkpoint.layout != agent.layout:
            raise CheckpointError(f"{Path(path) / CONFIG_FILE}: the saved layout does not match the saved spaces")
        agent.tokenizer = checkpoint.tokenizer
        agent.model = load_model(checkpoint, path).to(agent.device)
        agent.dataset_info = checkpoint.dataset_info
        if checkpoint.iql is not None:
            agent.iql = checkpoint.iql
            agent.q_function = agent.iql.q_function()
        return agent


TTAgent = TrajectoryTransformerAgent
