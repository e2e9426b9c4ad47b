#!/usr/bin/env bash
# Regenerates testdata/llamacpp/quant-kvtest-27m.json: llama.cpp's quantizer
# (llref quantize, see ../shared/llamacpp-ref) run on kvtest-27m-f16 for the
# low-bit file types, recorded as SHA-256 digests of each file and tensor, which
# internal/quantize's TestLowBitMatchesLlamaCpp compares kvserve's quantizer with.
#
#   scripts/quant-llamacpp.sh            (LLREF: the llref binary; KVSERVE_SHARED: ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${KVSERVE_SHARED:-$(cd .. && pwd)/shared}
LLREF=${LLREF:-$HOME/.cache/kvserve-llamacpp-ref/build/llref}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for t in Q2_K Q3_K_S Q3_K_M Q3_K_L IQ4_XS; do
	OMP_WAIT_POLICY=PASSIVE "$LLREF" quantize "$SHARED/models/kvtest-27m-f16.gguf" "$tmp/kvtest-27m-$t.gguf" "$t" -t 2 >/dev/null
done
KVSERVE_SHARED=$SHARED go test ./internal/quantize -run 'TestLowBitMatchesLlamaCpp' -count=1 -args -lowbit-from "$tmp"
