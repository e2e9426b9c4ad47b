#!/usr/bin/env bash
# kvserve beside llama.cpp on mixture-of-experts files (issue 12): for each
# model, ROUNDS interleaved rounds of `kvserve bench` then `llref bench` with
# the same protocol (random tokens, one untimed warm-up, R repetitions,
# 2 threads, f16 cache; llama.cpp with flash attention, its default), each
# under /usr/bin/time (peak RSS, CPU, faults), with the load average logged
# before every run. kvserve's stderr carries its load time and resident
# memory after load. Results: $OUT/<model>/{kvN,llN}.{json,err} and log.
#
# Usage: scripts/compare-moe.sh MODEL.gguf...   Environment: P (128), N (16),
#   R (1), ROUNDS (2), KVSERVE (default: built from this checkout), LLREF_BIN
#   (default /tmp/llref-build/build/llref), OUT (/tmp/compare-moe).
# The models used in BENCHMARKS.md: kvserve synth --preset qwen3-30b-a3b
#   --layers 6 --type q4_k_m; kvserve synth --preset gpt-oss-20b --layers 4 --type f16.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE # llama.cpp threads sleep when idle (a shared machine)
cd "$(dirname "$0")/.."
P=${P:-128} N=${N:-16} R=${R:-1} ROUNDS=${ROUNDS:-2}
out=${OUT:-/tmp/compare-moe}
llref=${LLREF_BIN:-/tmp/llref-build/build/llref}
kvserve=${KVSERVE:-}
if [ -z "$kvserve" ]; then
  go build -o "$out/kvserve" ./cmd/kvserve
  kvserve=$out/kvserve
fi
for m in "$@"; do
  d=$out/$(basename "$m" .gguf)
  mkdir -p "$d"
  for r in $(seq "$ROUNDS"); do
    echo "round $r kvserve $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$d/log" >&2
    /usr/bin/time -f "time: maxrss %M KB wall %e user %U sys %S minflt %R" \
      "$kvserve" bench -m "$m" -p "$P" -n "$N" -r "$R" -t 2 -o json > "$d/kv$r.json" 2> "$d/kv$r.err"
    echo "round $r llama.cpp $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$d/log" >&2
    /usr/bin/time -f "time: maxrss %M KB wall %e user %U sys %S minflt %R" \
      "$llref" bench -m "$m" -p "$P" -n "$N" -r "$R" -t 2 > "$d/ll$r.json" 2> "$d/ll$r.err"
  done
  echo "done $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$d/log" >&2
done
