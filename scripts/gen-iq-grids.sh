#!/usr/bin/env bash
# Regenerates internal/tensor/iqgrids.go (the IQ types' lattice tables) from the
# ggml-common.h of the llama.cpp source kvserve compares against
# (../shared/llamacpp-ref/*.tar.xz, or GGML_COMMON=path/to/ggml-common.h).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${KVSERVE_SHARED:-$(cd .. && pwd)/shared}
if [ -n "${GGML_COMMON:-}" ]; then
	cat "$GGML_COMMON"
else
	tar -xJOf "$SHARED"/llamacpp-ref/llamacpp-*-cpu-src.tar.xz ./ml/backend/ggml/ggml/src/ggml-common.h
fi | go run ./internal/tensor/gengrids > internal/tensor/iqgrids.go.tmp
mv internal/tensor/iqgrids.go.tmp internal/tensor/iqgrids.go
