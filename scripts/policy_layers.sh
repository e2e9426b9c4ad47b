#!/usr/bin/env bash
# Issue 18, goal (b): a multistage policy averaging <= 4.5 bits per cached
# value at the end of a 4096-token growing context with KLD <= llama.cpp
# q8_0's (1.1e-4), using per-layer cold tiers (--cache-cold-k-layers /
# --cache-cold-v-layers). Same setup as policy_cb.sh: one growing context of
# 4096 tokens (TEXT, default war-and-peace-part1.txt; TEXT=dev.txt for the
# eval text), 32 tokens a step, 64-token pages, centred keys, KLD against
# the f16 cache; hot 64 f16, warm 256 q8_0, no sink, ladders f16,q8_0,cb4.
#
# Usage:
#   scripts/policy_layers.sh BIN MODEL screen   # per-layer sensitivity under the policy:
#       the bottom cb4 everywhere, then ONE layer's K (or V) cold tier at
#       cb3 / q5_0 / q8_0; prints the KLD of each (the change against the
#       all-cb4 row is that layer's sensitivity)
#   scripts/policy_layers.sh BIN MODEL best     # the configurations in BENCHMARKS.md
#   scripts/policy_layers.sh BIN MODEL run "COLD_K" "COLD_V" [EXTRA FLAGS...]
# Environment: TEXT (eval file), CHUNKS (growing 4096-token contexts, default 1;
# more are further, independent stretches of TEXT), WARM (default 256), LADDER (both ladders,
# default f16,q8_0,cb4), TYPES (the screen's cold types).
# MODEL: kvtest-27m or kvtest-qwen3-14m. KLD runs are CPU-heavy: run with nice.
set -euo pipefail
bin=${1:-./kvserve}
model=${2:-kvtest-27m}
mode=${3:-best}
shared=${KVSERVE_SHARED:-../shared}
text=${TEXT:-war-and-peace-part1.txt}
m=$shared/models/$model-f16.gguf
chunks=${CHUNKS:-1}
common=(-t 1 -m "$m" -f "$shared/eval/$text" -c 4096 --chunks "$chunks" --policy --cache-page-tokens 64)
base=${TMPDIR:-/tmp}/policy-layers-base-$model-${text%.txt}-4096x$chunks
[ -s "$base" ] || "$bin" perplexity "${common[@]}" --kl-divergence-base "$base" >/dev/null 2>&1
pol=(--cache-key-channels centre --cache-hot 64 --cache-warm "${WARM:-256}" --cache-sink 0
  --cache-ladder-k "${LADDER:-f16,q8_0,cb4}" --cache-ladder-v "${LADDER:-f16,q8_0,cb4}")
run() { # NAME COLD_K COLD_V [FLAGS...]
  local name=$1 ck=$2 cv=$3; shift 3
  local f=()
  [ -n "$ck" ] && f+=(--cache-cold-k-layers "$ck")
  [ -n "$cv" ] && f+=(--cache-cold-v-layers "$cv")
  out=$("$bin" perplexity "${common[@]}" --kl-divergence --kl-divergence-base "$base" "${pol[@]}" "${f[@]}" "$@" 2>/dev/null)
  bits=$(echo "$out" | sed -n 's/average bits per cached value: \([0-9.]*\) (at the end: \([0-9.]*\)).*/end \2 run \1/p')
  kld=$(echo "$out" | sed -n 's/^Mean    KLD: *\([0-9.e-]*\).*/\1/p')
  p99=$(echo "$out" | sed -n 's/^99.0%   KLD: *\([0-9.e-]*\).*/\1/p')
  top=$(echo "$out" | sed -n 's/^Same top p: *\([0-9.]*\).*/\1/p')
  last=$(echo "$out" | grep "positions  3584" | sed -n 's/.*mean KLD *\([0-9.e-]*\).*/\1/p')
  echo "$model | $text x$chunks | warm ${WARM:-256} ladder ${LADDER:-f16,q8_0,cb4} | $name | K ${ck:--} | V ${cv:--} | bits $bits | KLD $kld | p99 $p99 | KLD(3584-4095) $last | top1 $top"
}
layers=$(case $model in kvtest-qwen3-14m) echo 6 ;; *) echo 8 ;; esac)
case $mode in
screen)
  run "all cb4" "" ""
  for side in k v; do
    for t in ${TYPES:-cb3 q5_0 q8_0}; do
      for ((l = 0; l < layers; l++)); do
        if [ $side = k ]; then run "$side$l $t" "$l:$t" ""; else run "$side$l $t" "" "$l:$t"; fi
      done
    done
  done
  ;;
best)
  case $model in
  kvtest-27m)
    run "lost-branch setting" "0-4:cb3,5:q5_0,6:cb3,7:cb4" "0:cb4,1-4:cb3,5:cb4,6-7:cb3"
    ;;
  kvtest-qwen3-14m)
    run "all cb4" "" ""
    run "K5 q5_0, V0/V2/V5 cb4 (best on dev.txt)" "0-4:cb3,5:q5_0" "0:cb4,1:cb3,2:cb4,3:cb3,4:cb3,5:cb4"
    run "K5 q5_0, K1/V0/V5 cb4 (best on war-and-peace)" "0:cb3,1:cb4,2-4:cb3,5:q5_0" "0:cb4,1-4:cb3,5:cb4"
    ;;
  esac
  ;;
run)
  shift 3
  ck=$1 cv=$2; shift 2
  run "run" "$ck" "$cv" "$@"
  ;;
esac
