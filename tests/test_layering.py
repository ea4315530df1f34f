"""The package's floors (docs/architecture.md): a module imports only from its own floor or the floors below.

Parsed from the source, so imports inside functions count too. ``tt_agents/__init__.py`` is the public facade
over every floor and is not checked; ``envs/`` is a ground floor of its own that imports nothing of tt_agents.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tt_agents"

FLOORS: dict[str, int] = {
    "_version": 1,
    "_io": 1,
    "_validation": 1,
    "config": 1,
    "layout": 1,
    "spaces": 1,
    "inputs": 2,
    "distributed": 2,
    "data_loading": 2,
    "tokenizer": 2,
    "kv_cache": 2,
    "static_cache": 2,
    "training_log": 2,
    "training_device": 2,
    "model": 2,
    "train": 3,
    "planner": 3,
    "sampling": 3,
    "decoders": 3,
    "observation_reader": 3,
    "qfunctions": 3,
    "baselines": 3,
    "data_making": 3,
    "checkpoints": 3,
    "agent": 4,
    "agent_state": 4,
    "evaluation": 5,
    "analysis": 5,
    "pretrained": 6,
    "cli": 6,
    "": 5,
}
"""Each top-level module or sub-package of tt_agents and its floor; ``envs`` stands apart (anyone may import it).
The package itself (``""``: ``from tt_agents import ...``) re-exports up to the evaluation floor."""


def _component(module: str) -> str:
    """``tt_agents.baselines.iql`` -> ``baselines``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the tt_agents modules that ``path`` imports."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
    return {name for name in found if name == "tt_agents" or name.startswith("tt_agents.")}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_imports_only_from_its_floor_or_below(path: Path) -> None:
    own = _component(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
    imported = {_component(name) for name in _imported_modules(path)} - {own}
    if own == "envs":
        assert imported == set(), f"envs/ imports nothing of tt_agents above it, {path.name} imports {imported}"
        return
    assert own in FLOORS, f"{own} has no floor: add it to FLOORS here and to docs/architecture.md"
    above = {name or "tt_agents" for name in imported if FLOORS.get(name, 0) > FLOORS[own]}
    assert not above, f"{path.name} (floor {FLOORS[own]}) imports from higher floors: {sorted(above)}"


def test_the_floor_map_names_every_part_of_the_package() -> None:
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    parts -= {"__init__", "__pycache__", "envs"}
    assert parts == set(FLOORS) - {""}
