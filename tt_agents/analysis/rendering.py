"""Rendered rollouts (paper Figure 2): MuJoCo frames of decoded states, as an image strip and a GIF.

Works for the MuJoCo locomotion environments whose observation is ``qpos[1:]`` followed by ``qvel`` (Hopper,
Walker2d, HalfCheetah, Ant and Humanoid without contact forces, at their default
``exclude_current_positions_from_observation=True``): the body is drawn at x = 0, where the camera looks. On a
machine without a display, set ``MUJOCO_GL=egl`` before MuJoCo is first imported.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._io import write_atomic


def render_observations(env_id: str, observations: np.ndarray, width: int = 240, height: int = 240) -> np.ndarray:
    """Frames (H, height, width, 3) uint8 of ``env_id`` posed at each of ``observations`` (H, O)."""
    import gymnasium as gym

    env = gym.make(env_id, render_mode="rgb_array", width=width, height=height)
    try:
        env.reset(seed=0)
        sim = env.unwrapped
        if not getattr(sim, "_exclude_current_positions_from_observation", False):
            raise ValueError(
                f"{env_id}: only MuJoCo locomotion environments whose observation is qpos[1:] + qvel are rendered "
                "(pass --no-render / env_id=None)"
            )
        nq, nv = sim.model.nq, sim.model.nv
        observations = np.asarray(observations, dtype=np.float64)
        if observations.ndim != 2 or observations.shape[1] < nq - 1 + nv:
            raise ValueError(
                f"{env_id}: observations of shape {observations.shape} do not hold qpos[1:] ({nq - 1}) and qvel ({nv})"
            )
        frames = []
        for obs in observations:
            sim.set_state(np.concatenate([[0.0], obs[: nq - 1]]), obs[nq - 1 : nq - 1 + nv])
            frames.append(env.render())
        return np.stack(frames)
    finally:
        env.close()


def image_strip(rows: list[np.ndarray], every: int = 1) -> np.ndarray:
    """One image of rows of frames (each (H, h, w, 3)): every ``every``-th frame side by side, rows stacked."""
    return np.concatenate([np.concatenate(list(frames[::every]), axis=1) for frames in rows], axis=0)


def save_image(image: np.ndarray, out: str | os.PathLike[str]) -> Path:
    """Write an (h, w, 3) uint8 image as PNG."""
    from PIL import Image

    out = Path(out)
    write_atomic(out, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))
    return out


def save_gif(rows: list[np.ndarray], out: str | os.PathLike[str], fps: int = 20) -> Path:
    """Write a GIF whose frame t shows frame t of every row side by side (rows of equal length)."""
    from PIL import Image

    frames = [Image.fromarray(np.concatenate([row[t] for row in rows], axis=1)) for t in range(len(rows[0]))]
    out = Path(out)
    write_atomic(
        out,
        lambda tmp: frames[0].save(
            tmp, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0
        ),
    )
    return out
