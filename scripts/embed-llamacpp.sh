#!/usr/bin/env bash
# llama.cpp's embeddings of the shared test models, for kvserve's embedding
# parity test (internal/engine/embed_test.go): builds scripts/llamacpp-embed.cpp
# against the llref build of llama.cpp (LLREF, default
# ~/.cache/kvserve-llamacpp-ref; build it with ../shared/llamacpp-ref/build.sh)
# and writes testdata/llamacpp/embeddings.json: for each model and pooling
# (mean, cls, last, and none: the last token's row), each text's token ids
# and llama.cpp's vector before normalization; and rank pooling's scores of
# kvtest-qwen3-14m given a random rank head (scripts/rankhead), and kvtest-27m's
# with a random LoRA adapter at scale 0.75 (scripts/loraadapter). Needs g++
# with OpenMP, go, python3.
# Usage: scripts/embed-llamacpp.sh [OUT.json]
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
cd "$(dirname "$0")/.."
out=${1:-testdata/llamacpp/embeddings.json}
llref=${LLREF:-$HOME/.cache/kvserve-llamacpp-ref}
shared=${KVSERVE_SHARED:-../shared}
ll=$llref/src/llama/llama.cpp
gg=$llref/src/ml/backend/ggml/ggml
tmp=$(mktemp -d /tmp/embed-llamacpp-XXXX)
trap 'rm -rf "$tmp"' EXIT
g++ -std=c++17 -O2 -march=native -I"$ll/include" -I"$gg/include" scripts/llamacpp-embed.cpp -o "$tmp/embed" \
  "$llref/build/libllama.a" "$llref/build/libggml.a" -fopenmp -lpthread -ldl -lm
texts=("The cat sat on the mat, and the dog slept by the door." "func main() { fmt.Println(\"hello, world\") }")
: > "$tmp/lines"
for m in kvtest-27m-f16 kvtest-qwen3-14m-f16 kvtest-spm-5m-f16; do
  for p in mean cls last none; do
    "$tmp/embed" "$shared/models/$m.gguf" "$p" "${texts[@]}" | while read -r line; do
      printf '{"model":"%s","pooling":"%s","r":%s}\n' "$m" "$p" "$line"
    done >> "$tmp/lines"
  done
done
# Rank pooling: kvtest-qwen3-14m with a random rank head ("yes"/"no" rows,
# as Qwen3 rerankers; synth.WithRankHead, seed 1), which llama.cpp reads.
go run ./scripts/rankhead "$shared/models/kvtest-qwen3-14m-f16.gguf" "$tmp/rank.gguf"
"$tmp/embed" "$tmp/rank.gguf" rank "${texts[@]}" | while read -r line; do
  printf '{"model":"kvtest-qwen3-14m-f16+rank","pooling":"rank","r":%s}\n' "$line"
done >> "$tmp/lines"
# LoRA: kvtest-27m with a random adapter (synth.TestLoraAdapter) at scale 0.75.
go run ./scripts/loraadapter "$shared/models/kvtest-27m-f16.gguf" "$tmp/lora.gguf"
for p in last mean; do
  EMBED_LORA=$tmp/lora.gguf EMBED_LORA_SCALE=0.75 "$tmp/embed" "$shared/models/kvtest-27m-f16.gguf" "$p" "${texts[@]}" | while read -r line; do
    printf '{"model":"kvtest-27m-f16+lora0.75","pooling":"%s","r":%s}\n' "$p" "$line"
  done >> "$tmp/lines"
done
python3 - "$tmp/lines" "$out" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    r = e.pop("r")
    e.update(r)
    rows.append(e)
with open(sys.argv[2], "w") as f:
    f.write('{"source": "llama.cpp ec98e2002 (scripts/embed-llamacpp.sh), f16 cache, one 512-token batch",\n "entries": [\n')
    f.write(",\n".join("  " + json.dumps(r, separators=(",", ":")) for r in rows))
    f.write("\n ]}\n")
print(f"{len(rows)} entries -> {sys.argv[2]}")
PY
