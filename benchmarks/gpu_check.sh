#!/usr/bin/env bash
# The CUDA check, in one command of a few minutes on a machine with a CUDA GPU and torch:
#   the test suite (its CUDA tests run there; the rest must pass too), the decoder tests with the compiled step,
#   both speed benchmarks on the GPU (the planner with every decoding), and the demo on --device cuda. Every step's output goes to OUT_DIR (default benchmarks/results/gpu), one log each,
#   plus a summary of the exit codes; a failing step does not stop the later ones.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#
# The package and its dependencies must be importable. On an offline machine that has only torch, give a folder
# of wheels (the package's dependencies, built for that machine's Python) in WHEEL_DIR: they are installed into
# a private folder on PYTHONPATH, and the package is used from this checkout.
set -uo pipefail
cd "$(dirname "$0")/.."
out_dir=${1:-benchmarks/results/gpu}
mkdir -p "$out_dir"
export PYTHONUNBUFFERED=1 JAX_PLATFORMS=cpu

if [[ -n "${WHEEL_DIR:-}" ]]; then
    site=$(mktemp -d)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$WHEEL_DIR"/*.whl || exit 1
    export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"
    tt_agents_cli=(python3 -c "from tt_agents.cli import main; raise SystemExit(main())")
else
    tt_agents_cli=(tt-agents)
fi

summary="$out_dir/summary.txt"
: >"$summary"
step() {  # step NAME COMMAND...: run it, log to OUT_DIR/NAME.log, note its exit code and time
    local name=$1 start rc
    shift
    start=$(date +%s)
    echo "+ $*" | tee "$out_dir/$name.log"
    "$@" 2>&1 | tee -a "$out_dir/$name.log"
    rc=${PIPESTATUS[0]}
    echo "$name: exit $rc, $(($(date +%s) - start)) s" | tee -a "$summary"
}

step environment python3 -c "import torch, platform; print(platform.python_version(), torch.__version__,
torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
step tests python3 -m pytest -q -m "not slow" -p no:cacheprovider tests
step decoders python3 -m pytest -q -p no:cacheprovider tests/test_decoders.py  # the compiled ones (slow) too
step planning_speed python3 benchmarks/planning_speed.py --device cuda --quick --repeats 5 --envs 1 5 15 \
    --decodings cached static compiled
step training_speed python3 benchmarks/training_speed.py --device cuda --steps 50 --warmup 10
step demo "${tt_agents_cli[@]}" demo --device cuda
cat "$summary"
