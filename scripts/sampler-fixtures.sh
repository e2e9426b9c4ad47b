#!/usr/bin/env bash
# Regenerate testdata/llamacpp/samplers.json: llama.cpp's own samplers (the reference build of
# ../shared/llamacpp-ref/build.sh) run on fixed logits; internal/sample's TestChainMatchesLlamaCpp
# replays every case through kvserve's sampler chain.
#   scripts/sampler-fixtures.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
LLREF=${LLREF:-${XDG_CACHE_HOME:-$HOME/.cache}/kvserve-llamacpp-ref}
LL=$LLREF/src/llama/llama.cpp
GG=$LLREF/src/ml/backend/ggml/ggml
out=${1:-testdata/llamacpp/samplers.json}
bin=$(mktemp -d)/samplerfix
g++ -std=c++17 -O1 -I"$LL/include" -I"$LL/src" -I"$GG/include" scripts/sampler-fixtures/gen.cpp \
  "$LLREF/build/libllama.a" "$LLREF/build/libggml.a" -fopenmp -lpthread -o "$bin"
"$bin" > "$out"
rm -f "$bin"
echo "wrote $out"
