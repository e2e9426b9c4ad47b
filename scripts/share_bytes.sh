#!/bin/bash
# Ten slots, one long system prompt (REPS sentences: 150 is ~3.3k tokens, 92 ~2k): cache bytes and prefill time with and without prefix sharing.
# Usage: scripts/share_bytes.sh [KVSERVE_BINARY] [PORT]  (serves the embedded model on 127.0.0.1:PORT)
BIN=${1:-./kvserve}
PORT=${2:-18790}
REPS=${REPS:-150}
SYS=$(python3 -c "print(' '.join(['The assistant answers questions about ships, harbours and the weather at sea.']*$REPS))")
for mode in share noshare; do
  port=$PORT
  extra=""; [ $mode = noshare ] && extra="--no-cache-share"
  $BIN serve -np 10 -c 40960 --port $port $extra > /dev/null 2>&1 &
  pid=$!
  for i in $(seq 1 50); do curl -s localhost:$port/health | grep -q ok && break; sleep 0.3; done
  ntok=$(curl -s localhost:$port/tokenize -d "{\"content\":$(python3 -c "import json,sys;print(json.dumps(sys.argv[1]))" "$SYS")}" | python3 -c 'import json,sys;print(len(json.load(sys.stdin)["tokens"]))')
  t0=$(date +%s.%N)
  for i in $(seq 0 9); do
    curl -s localhost:$port/completion -d "{\"prompt\":$(python3 -c "import json,sys;print(json.dumps(sys.argv[1]))" "$SYS Question $i: how deep is the sea?"),\"n_predict\":1,\"id_slot\":$i}" > /dev/null
  done
  t1=$(date +%s.%N)
  curl -s localhost:$port/cache/usage | python3 -c "
import json,sys; d=json.load(sys.stdin)
print('$mode', 'system prompt tokens', $ntok, 'total_bytes', d['total_bytes'], 'shared_bytes', d['shared_bytes'], 'shared_pages', d['shared_pages'], 'seconds %.1f' % ($t1-$t0))"
  kill $pid; wait $pid 2>/dev/null
done
