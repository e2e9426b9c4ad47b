#!/bin/sh
# Runs CMD as a timed measurement on a shared machine: waits for the lock
# file (TIMED_LOCK, default /tmp/bench.lock; TIMED_WAIT seconds, default
# 1800), then runs CMD in a session of its own whose scheduler autogroup has
# nice -20. Where sched_autogroup is on (most desktop and many VM kernels),
# `nice` alone ranks a process only within its own session: a build started
# from another terminal still takes half the CPU, and llama.cpp's threads
# (which wait for each other at every operation) stall. Raising the
# autogroup's nice needs root; without it the run proceeds at normal
# priority with a warning. Usage: scripts/timed.sh CMD [ARGS...]
#   e.g. WRAP=scripts/timed.sh scripts/compare-llamacpp.sh
exec flock -w "${TIMED_WAIT:-1800}" "${TIMED_LOCK:-/tmp/bench.lock}" setsid -w sh -c '
  if [ -w /proc/self/autogroup ]; then echo -20 > /proc/self/autogroup 2>/dev/null || echo "timed.sh: cannot raise the autogroup priority" >&2; fi
  exec nice -n -20 "$@"' sh "$@"
