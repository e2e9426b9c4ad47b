#!/usr/bin/env bash
# llama.cpp's figures for the hybrid recurrent presets (issue 12): writes
# testdata/llamacpp/synth-hybrid.json with scripts/synth-llamacpp.sh — the
# tiny-qwen3next and tiny-lfm2 presets with f16 weights (seeds 1 and 2) and
# f16, q8_0 and q4_0 caches, and q8_0 weights (seed 1). Qwen3.5 (tiny-qwen35,
# tiny-qwen35moe) is not scored: the reference llama.cpp predates it.
# Usage: LLREF_BIN=/path/to/llref scripts/synth-hybrid-llamacpp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PRESETS="tiny-qwen3next tiny-lfm2" TYPES="f16 q8_0" REAL="" exec scripts/synth-llamacpp.sh testdata/llamacpp/synth-hybrid.json
