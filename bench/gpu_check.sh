#!/usr/bin/env bash
# The CUDA path in one call, on a machine with a GPU and this project installed (`make setup`,
# or any environment where `python -c "import optreg, torch"` works from the repository root).
# Installs nothing. Under 8 minutes on one GPU; prints one table at the end:
#   1. the CUDA-marked tests (tests/unit/training/test_cuda.py: a GPU job, streaming from the CPU to the
#      GPU, checkpoint and exact resume on the GPU);
#   2. a stacked train job of the default study (its digits MLP cell with Adam: 41 runs x 15
#      epochs), GPU and CPU;
#   3. one epoch of the MNIST preset's MLP on synthetic tensors of MNIST's real size
#      (bench/vision_epoch.py), 21 runs stacked as in its tuning jobs, GPU and CPU
#      (GPU_CHECK_MNIST_STACK changes the 21; --cpu uses 2);
#   4. a GPU train job SIGKILLed after its first checkpoint, rerun: are its records identical
#      to an uninterrupted run's?
#
# Usage: bench/gpu_check.sh            (from anywhere; runs in the repository root)
#        bench/gpu_check.sh --cpu      (no GPU: every step on the CPU, to check the script)
# GPU_CHECK_THREADS sets the CPU runs' torch threads (default: all cores).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python}
DEVICE=cuda
if [[ ${1:-} == --cpu ]]; then DEVICE=cpu; fi
CPU_THREADS=${GPU_CHECK_THREADS:-$(nproc)}
# 21 runs: a tuning stack of the MNIST preset (7 rates x 3 seeds); --cpu checks with fewer.
MNIST_STACK=${GPU_CHECK_MNIST_STACK:-21}
[[ $DEVICE == cpu ]] && MNIST_STACK=${GPU_CHECK_MNIST_STACK:-2}
DEVICES=("$DEVICE")
[[ $DEVICE == cpu ]] || DEVICES+=(cpu)  # the CPU figures to compare with
LOG=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
ROWS=()
row() { ROWS+=("$(printf '%-44s %-12s %s' "$1" "$2" "$3")"); }
# The result column of a step that failed: a timeout says so.
failed() { if [[ $1 -eq 124 ]]; then echo "TIMEOUT ${2}s"; else echo "FAIL ($1)"; fi; }
json() { "$PY" -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print($1)"; }

echo "gpu_check: device $DEVICE, logs in $LOG"
if [[ $DEVICE == cuda ]] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check: torch sees no CUDA device; run with --cpu to check the script alone" >&2
    exit 1
fi
"$PY" -c "import torch; print('torch', torch.__version__, '| cuda', torch.version.cuda, '|',
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" | tee "$LOG/env.txt"

# 1. CUDA-marked tests (skipped, and counted so, without a GPU).
if timeout 240 "$PY" -m pytest -m cuda -q -p no:cacheprovider tests/unit/training/test_cuda.py > "$LOG/tests.txt" 2>&1; then
    row "CUDA-marked tests" "pass" "$(tail -n 1 "$LOG/tests.txt")"
else
    row "CUDA-marked tests" "FAIL" "$(tail -n 1 "$LOG/tests.txt") (see $LOG/tests.txt)"
fi

# 2. A stacked digits job of the default study.
for dev in "${DEVICES[@]}"; do
    threads=1; [[ $dev == cpu ]] && threads=$CPU_THREADS
    if out=$(GPU_CHECK_THREADS=$threads timeout 150 "$PY" bench/gpu_check.py digits --device "$dev" 2> "$LOG/digits-$dev.txt"); then
        row "digits job, $(echo "$out" | json 'str(d["runs"]) + " runs x " + str(d["epochs"]) + " epochs"') ($dev)" \
            "$(echo "$out" | json 'd["wall_s"]') s" \
            "$(echo "$out" | json 'str(d["torch_threads"]) + " torch threads"')"
    else
        row "digits job ($dev)" "$(failed $? 150)" "see $LOG/digits-$dev.txt"
    fi
done

# 3. One MNIST-MLP epoch, MNIST_STACK runs stacked (synthetic tensors of the real size).
for dev in "${DEVICES[@]}"; do
    threads=1; [[ $dev == cpu ]] && threads=$CPU_THREADS
    if out=$(timeout 240 "$PY" bench/vision_epoch.py --config config/mnist.yaml --stack "$MNIST_STACK" \
            --device "$dev" --threads "$threads" 2> "$LOG/mnist-$dev.txt"); then
        echo "$out" > "$LOG/mnist-$dev.json"
        epoch=$("$PY" -c "import json; d=json.load(open('$LOG/mnist-$dev.json')); print(round(d['epoch_s'][0], 2))")
        row "MNIST MLP epoch, $MNIST_STACK runs stacked ($dev)" "$epoch s" "$threads threads; $LOG/mnist-$dev.json"
    else
        row "MNIST MLP epoch, $MNIST_STACK runs stacked ($dev)" "$(failed $? 240)" "see $LOG/mnist-$dev.txt"
    fi
done

# 4. SIGKILL after the first checkpoint, rerun, compare with an uninterrupted run.
if out=$(GPU_CHECK_THREADS=1 timeout 240 "$PY" bench/gpu_check.py resume --device "$DEVICE" 2> "$LOG/resume.txt"); then
    exact=$(echo "$out" | json '"identical" if d["exact"] else "DIFFERENT"')
    row "SIGKILLed job resumed ($DEVICE)" "$exact" "$(echo "$out" | json 'd["killed_at"]')"
else
    row "SIGKILLed job resumed ($DEVICE)" "$(failed $? 240)" "see $LOG/resume.txt"
fi

echo
printf '%-44s %-12s %s\n' "check" "result" "notes"
printf '%s\n' "${ROWS[@]}"
