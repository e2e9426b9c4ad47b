#!/usr/bin/env bash
# Fidelity of eviction as the cache budget's last step (--cache-evict,
# issue 17): KLD against the f16 cache when each chunk of
# ../shared/eval/war-and-peace-part1.txt is one growing context (64 tokens
# per step, 64-token pages) under a budget too small for the chunk even at
# the bottom of the ladders, so middle pages are evicted StreamingLLM-style.
# Per-segment KLD shows where it costs. Rows: the budget alone where the
# chunk fits at the lowest types (demotion only), then eviction settings.
# Usage: scripts/evict_kld.sh KVSERVE_BINARY MODEL.gguf [CTX] [CHUNKS]
set -euo pipefail
bin=$1; m=$2; ctx=${3:-2048}; chunks=${4:-2}
shared=${KVSERVE_SHARED:-../shared}
text=$shared/eval/war-and-peace-part1.txt
common=(-m "$m" -f "$text" -c "$ctx" --chunks "$chunks" --policy --cache-page-tokens 64 --segment 512)
base=$(mktemp /tmp/evict-base-XXXX)
trap 'rm -f "$base"' EXIT
$bin perplexity "${common[@]}" --kl-divergence-base "$base" 2>/dev/null | grep "Final estimate" | sed 's/^/f16 base: /'
run() { # name, flags...
  local name=$1; shift
  out=$($bin perplexity "${common[@]}" --kl-divergence --kl-divergence-base "$base" "$@" 2>&1) || { echo "$name | $(echo "$out" | tail -1)"; return; }
  bits=$(echo "$out" | sed -n 's/average bits per cached value: \([0-9.]*\) (at the end: \([0-9.]*\)).*/\1 \2/p')
  ev=$(echo "$out" | sed -n 's/^evicted: \([0-9]*\) tokens.*/\1/p')
  kld=$(echo "$out" | sed -n 's/^Mean    KLD: *\([0-9.e-]*\).*/\1/p')
  top=$(echo "$out" | sed -n 's/^Same top p: *\([0-9.]*\).*/\1/p')
  seg=$(echo "$out" | grep "mean KLD" | sed -n 's/.*positions *\([0-9]*\).*mean KLD *\([0-9.e-]*\).*/\1:\2/p' | tr '\n' ' ')
  echo "$name | bits(mean,end)=$bits | evicted=${ev:-0} | KLD=$kld | top1=$top | KLD by segment(start:mean)= $seg"
}
run "budget 4MiB (demotion only)" --cache-budget 4MiB
run "budget 1MiB, evict sinks:64,window:512" --cache-budget 1MiB --cache-evict sinks:64,window:512
run "budget 1MiB, evict sinks:0,window:512" --cache-budget 1MiB --cache-evict sinks:0,window:512
run "budget 768KiB, evict sinks:64,window:256" --cache-budget 768KiB --cache-evict sinks:64,window:256
run "budget 1MiB, evict sinks:64,window:1024 (too big for the budget)" --cache-budget 1MiB --cache-evict sinks:64,window:1024
