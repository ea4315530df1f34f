"""SAC policies, training states and replay buffers on disk, with nothing pickled.

Stable-Baselines3's own ``save``/``load`` pickle: a policy file is a ``torch.save`` of its constructor arguments
(classes and spaces), a model zip holds cloudpickled entries and a replay buffer is one pickle. A SAC run of
this package is written instead as

* a policy snapshot: a checkpoint folder (``config.json`` + ``model.safetensors``, the baselines' format) holding
  the policy's weights, its spaces and constructor arguments as JSON (:func:`save_sac_policy`,
  :func:`load_sac_policy_folder`);
* a training state: the same kind of folder with the policy, the three optimizers, the entropy coefficient and
  the step counters (:func:`save_sac_state`, :func:`restore_sac_state`);
* a replay buffer: one ``.npz`` of plain arrays, read with ``allow_pickle=False`` (:func:`save_replay_buffer`,
  :func:`read_replay_buffer`, :func:`restore_replay_buffer`);
* a run's resumable checkpoint: a folder of the two, swapped in whole (:func:`save_checkpoint`,
  :func:`find_checkpoint`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import CheckpointError, write_atomic, write_json_atomic
from ..baselines.checkpoint import read_checkpoint, write_checkpoint
from ..spaces import space_from_dict, space_to_dict

POLICY_KIND, STATE_KIND = "sb3_sac_policy", "sb3_sac_training_state"
_BUFFER_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
TRAINING_STATE, REPLAY_BUFFER, PROGRESS = "training_state", "replay_buffer.npz", "state.json"
"""The entries of a checkpoint folder: the training state folder, the replay buffer, ``{"num_timesteps": n}``."""
_CHECKPOINT, _CHECKPOINT_NEW, _CHECKPOINT_OLD = "checkpoint", "checkpoint.new", "checkpoint.old"
_CHECKPOINT_FILES = (f"{TRAINING_STATE}/config.json", f"{TRAINING_STATE}/model.safetensors", REPLAY_BUFFER, PROGRESS)


# ---------------------------------------------------------------------------------------------- policies


def save_sac_policy(policy: Any, path: str | os.PathLike[str], *, actor_only: bool = False) -> Path:
    """Write an SB3 ``SACPolicy`` as a checkpoint folder at ``path`` (weights in safetensors, the rest JSON).

    With ``actor_only`` only the actor's weights are written (a fifth of the size): the policy loaded back acts
    exactly as this one does, but its critics are freshly initialized, so it cannot continue SAC training.

    Raises:
        TypeError: a policy built with a custom features extractor, activation or optimizer that is not a
            ``torch.nn`` / ``torch.optim`` class (they cannot be described without pickling).
    """
    from stable_baselines3.common.torch_layers import FlattenExtractor

    params = policy._get_constructor_parameters()
    if params["features_extractor_class"] is not FlattenExtractor or params["features_extractor_kwargs"]:
        raise TypeError("save_sac_policy: only policies with SB3's default FlattenExtractor can be stored")
    state = {
        "kind": POLICY_KIND,
        "observation_space": space_to_dict(policy.observation_space),
        "action_space": space_to_dict(policy.action_space),
        "policy_kwargs": {
            "net_arch": params["net_arch"],
            "activation_fn": _class_name(params["activation_fn"], torch.nn),
            "use_sde": params["use_sde"],
            "log_std_init": params["log_std_init"],
            "use_expln": params["use_expln"],
            "clip_mean": params["clip_mean"],
            "n_critics": params["n_critics"],
            "normalize_images": params["normalize_images"],
            "share_features_extractor": policy.share_features_extractor,
            "optimizer_class": _class_name(params["optimizer_class"], torch.optim),
            "optimizer_kwargs": params["optimizer_kwargs"] or {},
        },
        "actor_only": actor_only,
        "modules": {
            "policy": {k: v for k, v in policy.state_dict().items() if k.startswith("actor.") or not actor_only}
        },
        "optimizers": {},
    }
    return write_checkpoint(path, state)


def load_sac_policy_folder(path: str | os.PathLike[str]) -> Any:
    """The SB3 ``SACPolicy`` written by :func:`save_sac_policy` at ``path``, on the CPU, in eval mode."""
    from stable_baselines3.sac.policies import SACPolicy

    state = read_checkpoint(path, POLICY_KIND)
    kwargs = dict(state["policy_kwargs"])
    try:
        kwargs["activation_fn"] = _named_class(kwargs["activation_fn"], torch.nn)
        kwargs["optimizer_class"] = _named_class(kwargs["optimizer_class"], torch.optim)
        policy = SACPolicy(
            space_from_dict(state["observation_space"]),
            space_from_dict(state["action_space"]),
            lr_schedule=lambda _: 0.0,
            **kwargs,
        )
        weights = state["modules"]["policy"]
        if state.get("actor_only", False):
            policy.actor.load_state_dict({k.removeprefix("actor."): v for k, v in weights.items()})
        else:
            policy.load_state_dict(weights)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} does not describe an SB3 SAC policy: {type(exc).__name__}: {exc}") from None
    policy.set_training_mode(False)
    return policy


def _class_name(cls: type, namespace: Any) -> str:
    if getattr(namespace, cls.__name__, None) is not cls:
        raise TypeError(f"{cls.__module__}.{cls.__name__} is not a {namespace.__name__} class and cannot be stored")
    return cls.__name__


def _named_class(name: str, namespace: Any) -> type:
    cls = getattr(namespace, name, None)
    if not isinstance(cls, type):
        raise ValueError(f"{name!r} is not a {namespace.__name__} class")
    return cls


# ---------------------------------------------------------------------------------------------- training state


def save_sac_state(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write what a SAC run needs to continue training (not its replay buffer) as a checkpoint folder."""
    optimizers = {"actor": model.actor.optimizer.state_dict(), "critic": model.critic.optimizer.state_dict()}
    if model.ent_coef_optimizer is not None:
        optimizers["ent_coef"] = model.ent_coef_optimizer.state_dict()
        tensors = {"log_ent_coef": model.log_ent_coef.detach()}
    else:
        tensors = {"ent_coef_tensor": model.ent_coef_tensor.detach()}
    state = {
        "kind": STATE_KIND,
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(model._n_updates),
        "episode_num": int(model._episode_num),
        "modules": {"policy": model.policy.state_dict()},
        "optimizers": optimizers,
        "tensors": tensors,
    }
    return write_checkpoint(path, state)


def restore_sac_state(model: Any, path: str | os.PathLike[str]) -> None:
    """Load the state written by :func:`save_sac_state` into ``model``, a new SAC built with the run's arguments.

    Raises:
        CheckpointError: the folder does not fit ``model`` (other network sizes, or entropy settings).
    """
    state = read_checkpoint(path, STATE_KIND)
    optimizers = {"actor": model.actor.optimizer, "critic": model.critic.optimizer}
    if model.ent_coef_optimizer is not None:
        optimizers["ent_coef"] = model.ent_coef_optimizer
    try:
        if sorted(state["optimizers"]) != sorted(optimizers):
            raise ValueError(f"optimizers {sorted(state['optimizers'])}, the model has {sorted(optimizers)}")
        model.policy.load_state_dict(state["modules"]["policy"])
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        with torch.no_grad():
            for name, value in state["tensors"].items():
                getattr(model, name).copy_(value)
    except (AttributeError, KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path} does not fit this SAC run: {type(exc).__name__}: {exc}") from None
    model.num_timesteps = state["num_timesteps"]
    model._n_updates = state["n_updates"]
    model._episode_num = state["episode_num"]


# ---------------------------------------------------------------------------------------------- replay buffer


def save_replay_buffer(buffer: Any, path: str | os.PathLike[str]) -> None:
    """Write an SB3 ``ReplayBuffer`` (one environment) as an ``.npz`` of its filled rows, atomically."""
    if buffer.n_envs != 1:
        raise ValueError(f"save_replay_buffer: the buffer has {buffer.n_envs} environments; expected 1")
    filled = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {name: getattr(buffer, name)[:filled] for name in _BUFFER_ARRAYS}
    space = buffer.action_space

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as file:
            np.savez(
                file,
                **arrays,
                position=np.int64(buffer.pos),
                full=np.bool_(buffer.full),
                buffer_size=np.int64(buffer.buffer_size),
                action_low=space.low,
                action_high=space.high,
            )

    write_atomic(path, write)


def read_replay_buffer(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays written by :func:`save_replay_buffer` (``observations`` ... ``timeouts`` of the filled rows,
    ``position``, ``full``, ``buffer_size``, ``action_low``, ``action_high``)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{path} is not a readable replay buffer: {exc}") from None
    missing = {*_BUFFER_ARRAYS, "position", "full", "buffer_size", "action_low", "action_high"} - set(arrays)
    if missing:
        raise CheckpointError(f"{path} is not a replay buffer written by tt_agents: missing {sorted(missing)}")
    return arrays


def restore_replay_buffer(buffer: Any, arrays: dict[str, np.ndarray]) -> None:
    """Fill ``buffer``, a new SB3 ``ReplayBuffer``, with ``arrays`` from :func:`read_replay_buffer`.

    A buffer that has not wrapped may go into a larger one (a longer run keeps every transition in order); one
    that has wrapped needs a buffer of its own size.
    """
    filled, saved_size = len(arrays["observations"]), int(arrays["buffer_size"])
    wrapped = bool(arrays["full"]) and int(arrays["position"]) != 0
    if buffer.buffer_size < filled or (wrapped and buffer.buffer_size != saved_size):
        raise CheckpointError(
            f"a replay buffer of size {saved_size} ({filled} rows filled) does not fit one of size {buffer.buffer_size}"
        )
    for name in _BUFFER_ARRAYS:
        target = getattr(buffer, name)
        if arrays[name].shape[1:] != target.shape[1:]:
            raise CheckpointError(
                f"replay buffer {name} has shape {arrays[name].shape[1:]}, the run's {target.shape[1:]}"
            )
        target[:filled] = arrays[name]
    buffer.pos = int(arrays["position"]) if wrapped else filled % buffer.buffer_size
    buffer.full = wrapped or filled == buffer.buffer_size


# ---------------------------------------------------------------------------------------------- checkpoints


def legacy_run_message(workdir: Path) -> str:
    """What to do with a run folder written by an earlier version (SB3's pickling ``save``)."""
    return (
        f"the SAC run in {workdir} was written by an earlier tt_agents with pickled files (SB3's save), which this "
        "version does not read; delete that folder to train the run again"
    )


def find_checkpoint(workdir: Path) -> Path | None:
    """The latest complete checkpoint folder in ``workdir`` (``checkpoint.old`` covers a crash in the middle of a
    swap), or None.

    Raises:
        CheckpointError: the run was written by an earlier version with pickled files.
    """
    for name in (_CHECKPOINT, _CHECKPOINT_OLD):
        folder = workdir / name
        if (folder / "model.zip").exists():
            raise CheckpointError(legacy_run_message(workdir))
        if all((folder / file).exists() for file in _CHECKPOINT_FILES):
            return folder
    return None


def save_checkpoint(model: Any, workdir: Path) -> None:
    """Training state + replay buffer into ``workdir/checkpoint/``, swapped in atomically (a crash leaves one
    complete copy)."""
    new, current, old = (workdir / name for name in (_CHECKPOINT_NEW, _CHECKPOINT, _CHECKPOINT_OLD))
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    save_sac_state(model, new / TRAINING_STATE)
    save_replay_buffer(model.replay_buffer, new / REPLAY_BUFFER)
    write_json_atomic(new / PROGRESS, {"num_timesteps": int(model.num_timesteps)})
    shutil.rmtree(old, ignore_errors=True)
    if current.exists():
        current.rename(old)
    new.rename(current)
    shutil.rmtree(old, ignore_errors=True)
