#!/usr/bin/env bash
# Fidelity table (issue 4): KL divergence of each cache type against the f16
# cache on ../shared/eval/dev.txt, ctx 2048, 40 chunks, rotation on and off.
# Usage: scripts/fidelity.sh [KVSERVE_BINARY] > fidelity.txt
set -euo pipefail
bin=${1:-./kvserve}
shared=${KVSERVE_SHARED:-../shared}
text=$shared/eval/dev.txt
for model in kvtest-27m-f16 kvtest-qwen3-14m-f16; do
  m=$shared/models/$model.gguf
  base=$(mktemp /tmp/kld-base-XXXX)
  $bin perplexity -m "$m" -f "$text" -c 2048 --chunks 40 --kl-divergence-base "$base" 2>/dev/null | grep "Final estimate" | sed "s/^/$model f16\/f16: /"
  for kv in q8_0/q8_0 q5_1/q5_1 q5_0/q5_0 q4_1/q4_1 q4_0/q4_0 iq4_nl/iq4_nl q8_0/q4_0 q4_0/q8_0; do
    k=${kv%/*}; v=${kv#*/}
    for rot in off on; do
      out=$($bin perplexity -m "$m" -f "$text" -c 2048 --chunks 40 -ctk "$k" -ctv "$v" --cache-rotate $rot \
            --kl-divergence --kl-divergence-base "$base" 2>/dev/null)
      ppl=$(echo "$out" | sed -n 's/Final estimate: PPL = \([0-9.]*\).*/\1/p')
      kld=$(echo "$out" | sed -n 's/^Mean    KLD: *\([0-9.e-]*\).*/\1/p')
      p99=$(echo "$out" | sed -n 's/^99.0%   KLD: *\([0-9.e-]*\).*/\1/p')
      top=$(echo "$out" | sed -n 's/^Same top p: *\([0-9.]*\).*/\1/p')
      echo "$model K=$k V=$v rotate=$rot PPL=$ppl KLD=$kld p99=$p99 top1=$top"
    done
  done
  rm -f "$base"
done
