#!/usr/bin/env bash
# Stop the daemons tests/slurm/setup.sh started, by the PIDs it recorded (never by name),
# and remove the configuration it wrote.
# Usage (as root):  tests/slurm/teardown.sh [STATE]    STATE defaults to /tmp/optreg-slurm
set -uo pipefail

STATE=${1:-${OPTREG_SLURM_STATE:-/tmp/optreg-slurm}}
MARK="# written by optreg tests/slurm/setup.sh"

if [[ -s $STATE/pids ]]; then
    # Jobs still queued or running on this test cluster (a test that timed out) go first,
    # so that no job step outlives its slurmd.
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
    if [[ -n $jobs ]]; then
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs || true
        for ((i = 0; i < 50; i++)); do
            [[ -z $(timeout 10 squeue -h -o %i 2>/dev/null) ]] && break
            sleep 0.2
        done
    fi
    # The reverse order of starting: slurmd, slurmctld, slurmdbd, mariadbd, munged.
    tac "$STATE/pids" | while read -r pid name; do
        # Only a process that is still the daemon started (a PID can be reused).
        if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]; then
            kill -TERM "$pid"
            for ((i = 0; i < 50; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
            if kill -0 "$pid" 2>/dev/null; then
                echo "teardown.sh: $name ($pid) ignored SIGTERM; sending SIGKILL" >&2
                kill -KILL "$pid"
            fi
        fi
    done
    : > "$STATE/pids"
fi
for f in /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf; do
    if [[ -e $f ]] && grep -qF "$MARK" "$f"; then rm -f "$f"; fi
done
echo "teardown.sh: stopped the daemons recorded in $STATE/pids"
