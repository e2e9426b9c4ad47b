#!/usr/bin/env bash
# llama.cpp's figures for the hybrid recurrent presets (issue 12): writes
# testdata/llamacpp/synth-hybrid.json with scripts/synth-llamacpp.sh — the
# tiny-qwen3next preset in f16 and q8_0 weights (seed 1), f16 seed 2, and the
# q8_0 and q4_0 caches. Qwen3.5 (tiny-qwen35, tiny-qwen35moe) is not scored:
# the reference llama.cpp predates it.
# Usage: LLREF_BIN=/path/to/llref scripts/synth-hybrid-llamacpp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PRESETS="tiny-qwen3next" TYPES="${TYPES:-f16 q8_0}" REAL="" exec scripts/synth-llamacpp.sh testdata/llamacpp/synth-hybrid.json
