#!/usr/bin/env bash
# Codebook cache types and key channels (issue 18): KL divergence of cache
# settings against the f16 cache on ../shared/eval/dev.txt, ctx 2048, 10
# chunks, rotation on.
# Usage: scripts/codebook_kld.sh BIN MODEL "K/V K/V ..." [extra kvserve flags]
#   e.g. scripts/codebook_kld.sh ./kvserve kvtest-27m "q4_0/q4_0 cb3/cb3" --cache-key-channels centre
# MODEL is a file name under ../shared/models without -f16.gguf. The f16
# base distribution is computed once per model into $TMPDIR.
set -u
bin=$1; model=$2; kvs=$3; shift 3
shared=${KVSERVE_SHARED:-../shared}
m=$shared/models/$model-f16.gguf
base=${TMPDIR:-/tmp}/kvserve-kld-base-$model-2048x10
if [ ! -s "$base" ]; then
  "$bin" perplexity -m "$m" -f "$shared/eval/dev.txt" -c 2048 --chunks 10 --kl-divergence-base "$base" >/dev/null 2>&1
fi
for kv in $kvs; do
  k=${kv%/*}; v=${kv#*/}
  o=$("$bin" perplexity -m "$m" -f "$shared/eval/dev.txt" -c 2048 --chunks 10 -ctk "$k" -ctv "$v" --cache-rotate on \
      --kl-divergence --kl-divergence-base "$base" "$@" 2>&1)
  kld=$(echo "$o" | sed -n 's/^Mean    KLD: *\([0-9.e-]*\).*/\1/p')
  p99=$(echo "$o" | sed -n 's/^99.0%   KLD: *\([0-9.e-]*\).*/\1/p')
  top=$(echo "$o" | sed -n 's/^Same top p: *\([0-9.]*\).*/\1/p')
  ppl=$(echo "$o" | sed -n 's/Final estimate: PPL = \([0-9.]*\).*/\1/p')
  echo "$model K=$k V=$v $* PPL=$ppl KLD=$kld p99=$p99 top1=$top"
done
