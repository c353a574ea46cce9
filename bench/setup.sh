#!/usr/bin/env bash
# Installs the peers the benchmark compares batchd with (Debian apt). Idempotent, no prompts.
# A package that fails to install is reported and skipped: the bench then reports that peer as
# "unavailable: <why>" instead of dropping it.
set -uo pipefail
export DEBIAN_FRONTEND=noninteractive

# binary to check -> apt package that provides it
declare -A WANT=(
  [tsp]=task-spooler
  [nq]=nq
  [atd]=at
  [slurmctld]=slurmctld
  [slurmd]=slurmd
  [sbatch]=slurm-client
  [munged]=munge
  [hyperfine]=hyperfine
  [wrk]=wrk
)

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

missing=()
for bin in "${!WANT[@]}"; do
  have "$bin" || missing+=("${WANT[$bin]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "bench/setup.sh: all peers installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/setup.sh: not root; please install: ${missing[*]}" >&2
  exit 0
fi
echo "bench/setup.sh: installing ${missing[*]}"
if ! apt-get update -qq; then
  echo "bench/setup.sh: apt-get update failed; peers that are missing will be reported unavailable" >&2
fi
# The postinst scripts of at/munge/slurm try to start services; there is no init here, so keep
# them from trying (policy-rc.d exit 101 = "not allowed"), then restore whatever was there.
policy=/usr/sbin/policy-rc.d
restore=""
if [ -e "$policy" ]; then restore=$(mktemp); cp -p "$policy" "$restore"; fi
printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
for pkg in "${missing[@]}"; do
  if ! apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null; then
    echo "bench/setup.sh: could not install $pkg" >&2
  fi
done
if [ -n "$restore" ]; then mv "$restore" "$policy"; else rm -f "$policy"; fi
exit 0
