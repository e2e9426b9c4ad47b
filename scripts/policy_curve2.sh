#!/usr/bin/env bash
# Second sweep (issue 7): policies near 5 bits per cached value. Same setup
# as policy_curve.sh.
set -euo pipefail
bin=${1:-./kvserve}
shared=${KVSERVE_SHARED:-../shared}
m=$shared/models/kvtest-27m-f16.gguf
text=$shared/eval/war-and-peace-part1.txt
common=(-m "$m" -f "$text" -c 4096 --chunks 1 --policy --cache-page-tokens 64)
base=$(mktemp /tmp/policy-base-XXXX)
$bin perplexity "${common[@]}" --kl-divergence-base "$base" >/dev/null 2>&1
run() {
  local name=$1; shift
  out=$($bin perplexity "${common[@]}" --kl-divergence --kl-divergence-base "$base" "$@" 2>/dev/null)
  bits=$(echo "$out" | sed -n 's/average bits per cached value: \([0-9.]*\) (at the end: \([0-9.]*\)).*/\1 \2/p')
  kld=$(echo "$out" | sed -n 's/^Mean    KLD: *\([0-9.e-]*\).*/\1/p')
  top=$(echo "$out" | sed -n 's/^Same top p: *\([0-9.]*\).*/\1/p')
  last=$(echo "$out" | grep "positions  3584" | sed -n 's/.*mean KLD *\([0-9.e-]*\).*/\1/p')
  echo "$name | bits(mean,end)=$bits | KLD=$kld | KLD(3584-4095)=$last | top1=$top"
}
for hot in 512 1024; do
  run "q8_0 hot=$hot sink=64, then q4_0/q4_0" --cache-hot $hot --cache-sink 64 --cache-ladder-k q8_0,q4_0 --cache-ladder-v q8_0,q4_0
  run "q8_0 hot=$hot sink=64, then K q5_0 V q4_0" --cache-hot $hot --cache-sink 64 --cache-ladder-k q8_0,q5_0 --cache-ladder-v q8_0,q4_0
done
for hw in "32 384" "64 320" "64 512" "128 256"; do
  set -- $hw
  run "f16 hot=$1, q8_0 warm=$2, sink=64, then q4_0/q4_0" --cache-hot $1 --cache-warm $2 --cache-sink 64 \
    --cache-ladder-k f16,q8_0,q4_0 --cache-ladder-v f16,q8_0,q4_0
  run "f16 hot=$1, q8_0 warm=$2, sink=0, then q4_0/q4_0" --cache-hot $1 --cache-warm $2 \
    --cache-ladder-k f16,q8_0,q4_0 --cache-ladder-v f16,q8_0,q4_0
done
run "f16 hot=64, q8_0 warm=448, sink=64, then K q5_0 V q4_0" --cache-hot 64 --cache-warm 448 --cache-sink 64 \
  --cache-ladder-k f16,q8_0,q5_0 --cache-ladder-v f16,q8_0,q4_0
run "q8_0 hot=256, q5_0 warm=768, sink=64, then q4_0/q4_0" --cache-hot 256 --cache-warm 768 --cache-sink 64 \
  --cache-ladder-k q8_0,q5_0,q4_0 --cache-ladder-v q8_0,q5_0,q4_0
rm -f "$base"
