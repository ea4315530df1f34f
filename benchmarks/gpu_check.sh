#!/usr/bin/env bash
# The CUDA check on a machine with a CUDA GPU and torch (2.5 or newer): the test suite (its CUDA tests first, as a
# step of their own; the rest must pass too), the demo on --device cuda, both speed benchmarks on the GPU (the
# planner with each decoding as a step of its own), and the decoder tests with the compiled step. Every step's
# output goes to OUT_DIR (default benchmarks/results/gpu), one log each, and its exit code and time are appended to
# OUT_DIR/summary.txt under a dated header, so that runs in parts into one OUT_DIR keep every part's lines; a failing
# or timed-out step does not stop the later ones, and what finished is kept.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#   STEPS="environment tests_cuda demo" bash benchmarks/gpu_check.sh OUT_DIR     # some steps only, in this order
#
# Steps, in the default order (most telling first): environment tests_cuda demo planning_cached training_speed
# planning_static tests planning_compiled decoders acceptance. STEP_TIMEOUT (seconds, default 300) bounds each step
# but those that compile (tests_cuda, tests, training_speed, planning_compiled, decoders), which
# COMPILE_STEP_TIMEOUT (default 600) bounds. Where one command may run only so long, run the steps in parts with
# STEPS, e.g. "environment tests_cuda demo planning_cached" first.
#
# The package and its dependencies must be importable. On an offline machine that has only torch, give a folder
# of wheels in WHEEL_DIR: the package's dependencies and its test extra (pytest, pluggy, iniconfig), built for
# that machine's Python. Those whose distribution is not installed there already are installed into a private
# folder on PYTHONPATH, kept between runs (torch, nvidia-* and triton wheels are never installed: the machine's
# CUDA torch is the one to test, and its own dependencies, such as the sympy it pins, stay as they are); the
# package is used from this checkout.
set -uo pipefail
out_dir=$(realpath -m "${1:-$(dirname "$0")/results/gpu}")
wheel_dir=${WHEEL_DIR:+$(realpath -m "$WHEEL_DIR")}
cd "$(dirname "$0")/.."
mkdir -p "$out_dir"
export PYTHONUNBUFFERED=1 JAX_PLATFORMS=cpu

if [[ -n "$wheel_dir" ]]; then
    site="${TMPDIR:-/tmp}/tt_agents_gpu_check_site_$(ls "$wheel_dir" | cksum | cut -d' ' -f1)"  # one per wheel set
    if [[ ! -f "$site/.installed" ]]; then
        wheels=()
        for wheel in "$wheel_dir"/*.whl; do
            case $(basename "$wheel") in torch-* | nvidia_* | triton-*) continue ;; esac
            dist=$(basename "$wheel" | cut -d- -f1)
            python3 -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$dist" 2>/dev/null && continue
            wheels+=("$wheel")
        done
        rm -rf "$site" && mkdir -p "$site"
        if ((${#wheels[@]})); then
            python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "${wheels[@]}" \
                || exit 1
        fi
        touch "$site/.installed"
    fi
    export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's package, installed or not
fi
tt_agents_cli=(python3 -c "from tt_agents.cli import main; raise SystemExit(main())")

if ! python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check: torch sees no CUDA device here ($(python3 -c 'import torch; print(torch.__version__)'))" >&2
    exit 1
fi

default_steps="environment tests_cuda demo planning_cached training_speed planning_static tests planning_compiled decoders acceptance"
summary="$out_dir/summary.txt"
echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC') steps: ${STEPS:-$default_steps}" >>"$summary"
step() {  # step NAME COMMAND...: run it (at most its timeout), log to OUT_DIR/NAME.log, note its exit code and time
    local name=$1 start rc limit=${STEP_TIMEOUT:-300}
    shift
    case $name in
        tests_cuda | tests | training_speed | planning_compiled | decoders) limit=${COMPILE_STEP_TIMEOUT:-600} ;;
    esac
    start=$(date +%s)
    echo "+ $*" | tee "$out_dir/$name.log"
    timeout -k 30 "$limit" "$@" 2>&1 | tee -a "$out_dir/$name.log"
    rc=${PIPESTATUS[0]}
    echo "$name: exit $rc$([[ $rc == 124 ]] && echo ' (timed out)'), $(($(date +%s) - start)) s" | tee -a "$summary"
}

run_step() {
    case $1 in
        environment) step environment python3 -c "import torch, platform; print(platform.python_version(),
torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0)); import shutil
print('C compiler (torch.compile needs one):', shutil.which('gcc') or shutil.which('cc'))" ;;
        tests_cuda) step tests_cuda python3 -m pytest -v -m "not slow" -k cuda -p no:cacheprovider tests ;;
        tests) step tests python3 -m pytest -v --durations=20 -m "not slow" -k "not cuda" -p no:cacheprovider tests ;;
        demo) step demo "${tt_agents_cli[@]}" demo --device cuda ;;
        planning_cached | planning_static) step "$1" python3 benchmarks/planning_speed.py \
            --device cuda --quick --repeats 5 --envs 1 5 15 --decodings "${1#planning_}" ;;
        planning_compiled) step "$1" python3 benchmarks/planning_speed.py \
            --device cuda --quick --repeats 5 --envs 1 15 --decodings compiled ;;  # a graph per row count: fewer
        training_speed) step training_speed python3 benchmarks/training_speed.py --device cuda --steps 50 --warmup 10 ;;
        decoders) step decoders python3 -m pytest -v -p no:cacheprovider tests/test_decoders.py ;;  # slow ones too
        acceptance) step acceptance python3 -m pytest -v -p no:cacheprovider -m slow -k cuda \
            tests/test_slow_acceptance.py ;;  # the README's quick start trained on the GPU, then evaluated
        *) echo "gpu_check: unknown step '$1'" | tee -a "$summary" ;;
    esac
}

for name in ${STEPS:-$default_steps}; do
    run_step "$name"
done
cat "$summary"
