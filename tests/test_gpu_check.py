"""benchmarks/gpu_check.sh, the one command a CUDA machine runs: every step's command must be one its program
accepts, since a step that fails on its arguments is found only on the GPU. Nothing here runs a step."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the scripts import their neighbours

import planning_speed  # noqa: E402
import training_speed  # noqa: E402

SCRIPT = (ROOT / "benchmarks" / "gpu_check.sh").read_text()


def default_steps() -> list[str]:
    return re.search(r'^default_steps="([^"]*)"', SCRIPT, re.MULTILINE).group(1).split()


def step_command(name: str) -> list[str]:
    """The command ``run_step NAME`` hands to ``step``, from the script's own ``run_step`` (``step`` stubbed)."""
    start = SCRIPT.index("run_step() {")
    function = SCRIPT[start : SCRIPT.index("\n}\n", start) + 3]
    stub = 'step() { shift; printf "%s\\0" "$@"; }\ntt_agents_cli=(tt-agents)\nsummary=/dev/null\n'
    out = subprocess.run(["bash", "-c", f"{stub}{function}run_step {name}"], capture_output=True, check=True)
    return [part.decode() for part in out.stdout.split(b"\0")[:-1]]


def test_the_default_steps_are_all_known() -> None:
    assert default_steps()[:3] == ["environment", "tests_cuda", "demo"]
    assert {"tests", "decoders", "acceptance"} <= set(default_steps())
    for name in default_steps():
        assert step_command(name), f"gpu_check.sh has no command for its default step {name!r}"


@pytest.mark.parametrize("name", [n for n in default_steps() if n.startswith(("planning_", "training_"))])
def test_every_benchmark_step_parses(name: str) -> None:
    command = step_command(name)
    assert command[0] == "python3"
    program = {"benchmarks/planning_speed.py": planning_speed, "benchmarks/training_speed.py": training_speed}
    args = program[command[1]].parse_args(command[2:])  # argparse exits (SystemExit) on arguments it refuses
    assert args.device == "cuda"
    if name.startswith("planning_"):
        assert args.decodings == [name.removeprefix("planning_")]


@pytest.mark.parametrize("name", [n for n in default_steps() if n in ("tests_cuda", "tests", "decoders", "acceptance")])
def test_the_test_steps_name_existing_tests(name: str) -> None:
    command = step_command(name)
    assert command[:3] == ["python3", "-m", "pytest"]
    assert (ROOT / command[-1]).exists()
