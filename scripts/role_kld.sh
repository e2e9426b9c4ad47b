#!/usr/bin/env bash
# Fidelity of cache rules by token role (issue 21): KLD against the f16
# cache and bits per cached value of "prompt at q8_0, generated at f16"
# against uniform q8_0 and uniform f16, on one model. Each chunk of
# ../shared/eval/war-and-peace-part1.txt is one growing context (32 tokens
# per step); its second half is marked as generated tokens (--span), so
# the per-segment KLD shows the prompt half and the generated half apart.
# Usage: scripts/role_kld.sh KVSERVE_BINARY MODEL.gguf [CTX] [CHUNKS]
set -euo pipefail
bin=$1; m=$2; ctx=${3:-2048}; chunks=${4:-2}
shared=${KVSERVE_SHARED:-../shared}
text=$shared/eval/war-and-peace-part1.txt
half=$((ctx / 2))
common=(-m "$m" -f "$text" -c "$ctx" --chunks "$chunks" --policy --cache-page-tokens 64 --segment "$half" --span "generated:$half-")
base=$(mktemp /tmp/role-base-XXXX)
trap 'rm -f "$base"' EXIT
$bin perplexity "${common[@]}" --kl-divergence-base "$base" 2>/dev/null | grep "Final estimate" | sed 's/^/f16 base: /'
run() { # name, flags...
  local name=$1; shift
  out=$($bin perplexity "${common[@]}" --kl-divergence --kl-divergence-base "$base" "$@" 2>/dev/null)
  bits=$(echo "$out" | sed -n 's/average bits per cached value: \([0-9.]*\) (at the end: \([0-9.]*\)).*/\1 \2/p')
  kld=$(echo "$out" | sed -n 's/^Mean    KLD: *\([0-9.e-]*\).*/\1/p')
  seg=$(echo "$out" | grep "mean KLD" | sed -n 's/.*positions *\([0-9]*\).*mean KLD *\([0-9.e-]*\).*/\1:\2/p' | tr '\n' ' ')
  echo "$name | bits(mean,end)=$bits | KLD=$kld | KLD by segment(start:mean)= $seg"
}
run "uniform f16"
run "uniform q8_0" -ctk q8_0 -ctv q8_0
run "prompt q8_0, generated f16" --cache-type-prompt q8_0 --cache-type-generated f16
run "prompt f16, generated q8_0" --cache-type-prompt f16 --cache-type-generated q8_0
