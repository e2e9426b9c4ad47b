#!/usr/bin/env bash
# Regenerates testdata/llamacpp/lowbit-ppl.json: llama.cpp's perplexity (llref ppl,
# ../shared/llamacpp-ref) of kvtest-27m quantized by llama.cpp into the low-bit file
# types, on eval/dev.txt at ctx 512, first 4 chunks, f16 cache, 2 threads. The IQ2/IQ1
# types need an importance matrix: scripts/llref-iq/quant-ones.cpp (built here against
# the llref build) passes one of ones. internal/engine's TestLowBitPerplexity compares
# kvserve with these figures.
#
#   scripts/lowbit-ppl-llamacpp.sh [OUTDIR]   (OUTDIR keeps the quantized files; default: a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${KVSERVE_SHARED:-$(cd .. && pwd)/shared}
LREF=${LLREF_DIR:-$HOME/.cache/kvserve-llamacpp-ref}
LLREF=$LREF/build/llref
out=${1:-$(mktemp -d)}
mkdir -p "$out"
src=$SHARED/models/kvtest-27m-f16.gguf
g++ -std=c++17 -O2 -I"$LREF/src/llama/llama.cpp/include" -I"$LREF/src/ml/backend/ggml/ggml/include" \
	scripts/llref-iq/quant-ones.cpp -o "$out/quant-ones" "$LREF/build/libllama.a" "$LREF/build/libggml.a" \
	-fopenmp -lpthread -ldl -lm
export OMP_WAIT_POLICY=PASSIVE
# name, llama_ftype number, "ones" if it needs the importance matrix of ones
types="Q4_K_M:15 Q3_K_L:13 Q3_K_M:12 Q3_K_S:11 Q2_K:10 IQ4_XS:30 IQ3_M:27 IQ3_XS:22 IQ2_M:29:ones IQ2_S:28:ones IQ2_XS:20:ones IQ2_XXS:19:ones IQ1_M:31:ones IQ1_S:24:ones"
{
	echo '{'
	echo ' "note": "llama.cpp (llref ppl) on kvtest-27m quantized by llama.cpp; dev.txt, ctx 512, 4 chunks, f16 cache; IQ2/IQ1 with an importance matrix of ones; regenerate with scripts/lowbit-ppl-llamacpp.sh",'
	echo ' "ctx": 512, "chunks": 4,'
	echo ' "ppl": {'
	sep=""
	for e in $types; do
		IFS=: read -r name num ones <<<"$e"
		f=$out/kvtest-27m-$name.gguf
		if [ ! -f "$f" ]; then
			if [ "${ones:-}" = ones ]; then
				"$out/quant-ones" "$src" "$f" "$num" 2 >/dev/null 2>&1
			else
				"$LLREF" quantize "$src" "$f" "$name" -t 2 >/dev/null 2>&1
			fi
		fi
		p=$("$LLREF" ppl -m "$f" -f "$SHARED/eval/dev.txt" -c 512 --chunks 4 -t 2 2>/dev/null | tail -1 | sed 's/.*"ppl":\([0-9.]*\).*/\1/')
		printf '%s  "%s": %s' "$sep" "$name" "$p"
		sep=$',\n'
	done
	echo
	echo ' }'
	echo '}'
} > testdata/llamacpp/lowbit-ppl.json
cat testdata/llamacpp/lowbit-ppl.json
