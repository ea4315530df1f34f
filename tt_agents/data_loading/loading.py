"""The one entry point that reads episodes: from a Minari dataset id, a ``minari.MinariDataset`` or in memory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .episodes import Episode, ObservationKey, episodes_from_items
from .minari_reading import load_minari_dataset, minari_episode_dicts

if TYPE_CHECKING:
    import minari


def load_episodes(
    source: str | minari.MinariDataset | Sequence[Episode | Mapping[str, Any]],
    *,
    observation_key: ObservationKey = None,
    goal_key: str | None = None,
    map_key: str | None = None,
) -> list[Episode]:
    """Read episodes from a Minari dataset id, a ``minari.MinariDataset`` or in-memory episodes.

    Args:
        source: a Minari dataset id (loaded locally, downloaded if possible, else
            :class:`~tt_agents.data_loading.DatasetNotAvailableError`), a ``minari.MinariDataset``, or a sequence
            of :class:`Episode` objects or dicts with keys ``observations`` (T or T+1 rows, or a dict of such
            arrays), ``actions``, ``rewards`` and optionally ``terminations``/``truncations`` (per-step
            Minari-style flags) or ``terminated`` (bool). Without termination information an episode counts as
            truncated.
        observation_key: the key of a Dict observation that holds the observation (default
            ``"observation"``), or a sequence of keys whose entries are concatenated in that order (a whole
            Dict observation as one flat row, like ``gymnasium.wrappers.FlattenObservation``); an entry of a
            nested Dict is named by its path of keys, e.g. ``("desired_goal", "kettle")``, and a Tuple's entries
            by their indices (a Tuple observation is a tuple of such arrays, as Minari stores it). A ``Discrete``
            entry's (T,) or (T+1,) categories are one column. With a sequence of keys, observations given as one
            array are taken as flattened already. Applies to Minari datasets and dicts.
        goal_key: the key of a Dict observation whose value at the episode's final observation becomes
            :attr:`Episode.goal` (hindsight relabelling), e.g. ``"achieved_goal"``.
        map_key: the key of a Dict observation that holds the episode's map of integer cells, e.g. ``"map"``: one
            (H, W) map the same at every step, or (T, H, W) maps that change through the episode; it becomes
            :attr:`Episode.map`.

    Returns:
        The validated episodes, in dataset order.

    Raises:
        DatasetNotAvailableError: a Minari id that is neither local nor downloadable.
        ValueError: no episodes, non-flat observations, NaN/inf, inconsistent lengths (flags too), missing keys.
    """
    if isinstance(source, str):
        source = load_minari_dataset(source)
    if isinstance(source, Sequence):
        items: Any = source
    else:
        import minari

        if not isinstance(source, minari.MinariDataset):
            raise TypeError(
                "load_episodes: source must be a Minari dataset id, a minari.MinariDataset or a list of "
                f"episodes, got {type(source).__name__}"
            )
        items = minari_episode_dicts(source, observation_key)
    episodes = episodes_from_items(items, observation_key, goal_key, map_key)
    if not episodes:
        raise ValueError("load_episodes: the source holds no episodes")
    return episodes
