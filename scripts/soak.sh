#!/usr/bin/env bash
# Soak test (not part of go test or .ci/run): N clients of mixed kinds
# (streaming and not, chat and completion, long prompts, cancellations,
# id_slot, requantize and policy changes, slot save/restore/erase,
# malformed bodies) for M minutes against an in-process server with -np 4
# and a cache budget, on loopback only. Reports answers by status, streams
# without a proper end, p50/p99 latency, RSS over the run and at its peak,
# goroutines before and after; exits non-zero on any 5xx, unterminated
# stream or goroutine leak.
#
# Usage: scripts/soak.sh [CLIENTS] [MINUTES] [kvsoak flags: -np, -c, -budget, -m, -seed]
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-8}
minutes=${2:-3}
shift $(( $# < 2 ? $# : 2 ))
go build -o /tmp/kvsoak ./cmd/kvsoak
exec /tmp/kvsoak -clients "$clients" -duration "${minutes}m" "$@"
