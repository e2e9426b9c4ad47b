#!/usr/bin/env bash
# Issue 18: per-layer K/V cache types from a per-layer sensitivity screen.
# Step 1 puts cb2 on the K (then the V) cache of ONE layer at a time, the rest
# f16, and measures the KL divergence against the f16 cache (ctx 2048 on
# ../shared/eval/dev.txt, CHUNKS chunks, centred keys). Single-layer damages
# add up well (kvtest-27m: the 16 single-layer figures sum to 0.105 at 3
# chunks; cb2/cb2 measures 0.108 at 10). Step 2 (scripts/layer_alloc.py)
# picks a type per layer and side minimising the predicted KLD under a bits
# budget, and prints the --cache-type-k-layers / --cache-type-v-layers flags.
# Usage: scripts/layer_kld.sh BIN MODEL LAYERS [CHUNKS] > screen.txt
#        scripts/layer_alloc.py screen.txt BUDGET [TYPES]
#   e.g. scripts/layer_kld.sh ./kvserve kvtest-27m 8 3 > s.txt; scripts/layer_alloc.py s.txt 3.28
set -euo pipefail
bin=$1; model=$2; layers=$3; chunks=${4:-3}
shared=${KVSERVE_SHARED:-../shared}
m=$shared/models/$model-f16.gguf
base=${TMPDIR:-/tmp}/kvserve-kld-base-$model-2048x$chunks
[ -s "$base" ] || "$bin" perplexity -m "$m" -f "$shared/eval/dev.txt" -c 2048 --chunks "$chunks" --kl-divergence-base "$base" >/dev/null 2>&1
for side in k v; do
  for ((l = 0; l < layers; l++)); do
    o=$("$bin" perplexity -m "$m" -f "$shared/eval/dev.txt" -c 2048 --chunks "$chunks" --cache-key-channels centre \
        --cache-type-$side-layers "$l:cb2" --kl-divergence --kl-divergence-base "$base" 2>&1)
    kld=$(echo "$o" | sed -n 's/^Mean    KLD: *\([0-9.e-]*\).*/\1/p')
    echo "$model ${side^^} $l $kld"
  done
done
