#!/usr/bin/env bash
# Speed table (issue 3/4): kvtest-27m in f16 and llama.cpp's Q8_0 and Q4_K_M
# files, f16 / q8_0 / q4_0 caches: pp512, tg128, tg128 at depth 2048 (and
# from 3968 to 4096 for the f16 weights), medians of 5, 2 threads, JSON lines.
# Usage: scripts/speed.sh [KVSERVE_BINARY] > speed.jsonl
set -euo pipefail
bin=${1:-./kvserve}
shared=${KVSERVE_SHARED:-../shared}
for w in kvtest-27m-f16.gguf llamacpp-quantized/kvtest-27m-Q8_0.gguf llamacpp-quantized/kvtest-27m-Q4_K_M.gguf; do
  for c in f16 q8_0 q4_0; do
    $bin bench -m "$shared/models/$w" -p 512 -n 128 -d 0,2048 -r 5 -t 2 -ctk $c -ctv $c -o json 2>/dev/null |
      python3 -c 'import json,sys; [print(json.dumps(r)) for r in json.load(sys.stdin)]'
    if [ "$w" = kvtest-27m-f16.gguf ]; then # decode at the end of a full 4096-token context
      $bin bench -m "$shared/models/$w" -p 0 -n 128 -d 3968 -r 5 -t 2 -ctk $c -ctv $c -o json 2>/dev/null |
        python3 -c 'import json,sys; [print(json.dumps(r)) for r in json.load(sys.stdin)]'
    fi
  done
done
