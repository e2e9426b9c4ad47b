#!/usr/bin/env bash
# KLD-vs-bits curve of cache policies (issue 7): kvtest-27m, the first 4096
# tokens of ../shared/eval/war-and-peace-part1.txt as one growing context
# (32 tokens per step, as a chat fills its cache), against the f16 cache.
# Usage: scripts/policy_curve.sh [KVSERVE_BINARY] > policy.txt
set -euo pipefail
bin=${1:-./kvserve}
shared=${KVSERVE_SHARED:-../shared}
m=$shared/models/kvtest-27m-f16.gguf
text=$shared/eval/war-and-peace-part1.txt
common=(-m "$m" -f "$text" -c 4096 --chunks 1 --policy --cache-page-tokens 64)
base=$(mktemp /tmp/policy-base-XXXX)
$bin perplexity "${common[@]}" --kl-divergence-base "$base" 2>/dev/null | grep "Final estimate" | sed 's/^/f16 base: /'
run() { # name, flags...
  local name=$1; shift
  out=$($bin perplexity "${common[@]}" --kl-divergence --kl-divergence-base "$base" "$@" 2>/dev/null)
  bits=$(echo "$out" | sed -n 's/average bits per cached value: \([0-9.]*\) (at the end: \([0-9.]*\)).*/\1 \2/p')
  kld=$(echo "$out" | sed -n 's/^Mean    KLD: *\([0-9.e-]*\).*/\1/p')
  top=$(echo "$out" | sed -n 's/^Same top p: *\([0-9.]*\).*/\1/p')
  last=$(echo "$out" | grep "positions  3584" | sed -n 's/.*mean KLD *\([0-9.e-]*\).*/\1/p')
  echo "$name | bits(mean,end)=$bits | KLD=$kld | KLD(3584-4095)=$last | top1=$top"
}
for t in q8_0 q5_1 q5_0 q4_1 q4_0 iq4_nl; do
  run "uniform $t" -ctk $t -ctv $t
done
run "uniform K q8_0 V q4_0" -ctk q8_0 -ctv q4_0
run "uniform K q5_0 V q4_0" -ctk q5_0 -ctv q4_0
for bottom in "q4_0 q4_0" "q5_0 q4_0" "q8_0 q4_0" "q5_0 q5_0"; do
  set -- $bottom; bk=$1; bv=$2
  for hot in 64 128 256 512; do
    for sink in 0 64; do
      run "multistage hot=$hot sink=$sink K f16>$bk V f16>$bv" --cache-hot $hot --cache-sink $sink \
        --cache-ladder-k f16,$bk --cache-ladder-v f16,$bv
    done
  done
done
run "multistage hot=128 warm=512 sink=64 K f16>q8_0>q5_0 V f16>q8_0>q4_0" --cache-hot 128 --cache-warm 512 --cache-sink 64
run "multistage hot=256 warm=1024 sink=64 K f16>q8_0>q4_0 V f16>q8_0>q4_0" --cache-hot 256 --cache-warm 1024 --cache-sink 64 \
  --cache-ladder-k f16,q8_0,q4_0 --cache-ladder-v f16,q8_0,q4_0
run "by length 0:f16,1024:q8_0,2048:q4_0" --dynamic-cache 0:f16,1024:q8_0,2048:q4_0
rm -f "$base"
