#!/usr/bin/env bash
# Issue 18: multistage policies whose bottom tier is a codebook type, for
# the --dynamic-cache auto preset. Same setup as policy_curve.sh (one
# growing context of 4096 tokens of war-and-peace-part1.txt, 32 tokens a
# step, 64-token pages, KLD against the f16 cache), keys centred.
# Usage: scripts/policy_cb.sh [BIN] [MODEL]   (MODEL: kvtest-27m or kvtest-qwen3-14m)
set -euo pipefail
bin=${1:-./kvserve}
model=${2:-kvtest-27m}
shared=${KVSERVE_SHARED:-../shared}
m=$shared/models/$model-f16.gguf
text=$shared/eval/war-and-peace-part1.txt
common=(-m "$m" -f "$text" -c 4096 --chunks 1 --policy --cache-page-tokens 64)
base=${TMPDIR:-/tmp}/policy-base-$model-4096
[ -s "$base" ] || $bin perplexity "${common[@]}" --kl-divergence-base "$base" >/dev/null 2>&1
run() {
  local name=$1; shift
  out=$($bin perplexity "${common[@]}" --kl-divergence --kl-divergence-base "$base" "$@" 2>/dev/null)
  bits=$(echo "$out" | sed -n 's/average bits per cached value: \([0-9.]*\) (at the end: \([0-9.]*\)).*/\1 \2/p')
  kld=$(echo "$out" | sed -n 's/^Mean    KLD: *\([0-9.e-]*\).*/\1/p')
  top=$(echo "$out" | sed -n 's/^Same top p: *\([0-9.]*\).*/\1/p')
  last=$(echo "$out" | grep "positions  3584" | sed -n 's/.*mean KLD *\([0-9.e-]*\).*/\1/p')
  echo "$model | $name | bits(mean,end)=$bits | KLD=$kld | KLD(3584-4095)=$last | top1=$top"
}
kc=(--cache-key-channels centre)
run "f16 hot=64, q8_0 warm=448, sink=64, then cb4/cb4" --cache-hot 64 --cache-warm 448 --cache-sink 64 \
  --cache-ladder-k f16,q8_0,cb4 --cache-ladder-v f16,q8_0,cb4 "${kc[@]}"
run "f16 hot=64, q8_0 warm=448, sink=64, then K cb4 V cb3" --cache-hot 64 --cache-warm 448 --cache-sink 64 \
  --cache-ladder-k f16,q8_0,cb4 --cache-ladder-v f16,q8_0,cb3 "${kc[@]}"
run "q8_0 hot=512, sink=64, then cb4/cb4" --cache-hot 512 --cache-sink 64 \
  --cache-ladder-k q8_0,cb4 --cache-ladder-v q8_0,cb4 "${kc[@]}"
run "f16 hot=64, q8_0 warm=192, sink=64, then cb4/cb4" --cache-hot 64 --cache-warm 192 --cache-sink 64 \
  --cache-ladder-k f16,q8_0,cb4 --cache-ladder-v f16,q8_0,cb4 "${kc[@]}"
run "q8_0 hot=256, sink=64, then cb4/cb4" --cache-hot 256 --cache-sink 64 \
  --cache-ladder-k q8_0,cb4 --cache-ladder-v q8_0,cb4 "${kc[@]}"
run "uniform cb4/cb4" -ctk cb4 -ctv cb4 "${kc[@]}"
