#!/usr/bin/env bash
# llama.cpp's view of kvserve's synthetic models (issue "models", item 5):
# writes every tiny preset (kvserve synth) in each type and records, into
# testdata/llamacpp/synth.json, llama.cpp's perplexity on the first 4 chunks
# of 256 tokens of ../shared/eval/dev.txt and its top-10 token ids (with
# log-probabilities) at the last position of a fixed prompt, with the file's
# SHA-256, so that tests can check the new architectures against llama.cpp
# without llama.cpp (and notice when the generator's output changes).
# Needs llref (LLREF_BIN, default ~/.cache/kvserve-llamacpp-ref/build/llref;
# build it with ../shared/llamacpp-ref/build.sh) and python3.
# Usage: scripts/synth-llamacpp.sh [OUT.json]   (TYPES="f16 q8_0 q4_k_m", SEED=1)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-testdata/llamacpp/synth.json}
llref=${LLREF_BIN:-$HOME/.cache/kvserve-llamacpp-ref/build/llref}
shared=${KVSERVE_SHARED:-../shared}
types=${TYPES:-f16 q8_0 q4_k_m}
seed=${SEED:-1}
prompt="The history of the city begins with a small village on the river, where"
ctx=256
chunks=4
tmp=$(mktemp -d /tmp/synth-llamacpp-XXXX)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/kvserve" ./cmd/kvserve
presets=$("$tmp/kvserve" synth --list | awk '$1 ~ /^tiny-/ {print $1}')
: > "$tmp/entries"
for p in $presets; do
  for t in $types; do
    f=$tmp/$p-$t.gguf
    "$tmp/kvserve" synth --preset "$p" --type "$t" --seed "$seed" -o "$f" 2>/dev/null
    sha=$(sha256sum "$f" | cut -d' ' -f1)
    "$llref" ppl -m "$f" -f "$shared/eval/dev.txt" -c $ctx --chunks $chunks 2>/dev/null | grep '^{' > "$tmp/ppl.json"
    "$llref" logits -m "$f" -prompt "$prompt" -n 1 --top 10 2>/dev/null | grep '^{' > "$tmp/logits.json"
    python3 - "$p" "$t" "$seed" "$sha" "$tmp/ppl.json" "$tmp/logits.json" >> "$tmp/entries" <<'PY'
import json, sys
p, t, seed, sha, pplf, logf = sys.argv[1:]
ppl = json.load(open(pplf))
lg = json.load(open(logf))
top = lg["top"][0]
print(json.dumps({"preset": p, "type": t, "seed": int(seed), "sha256": sha,
                  "ppl": round(ppl["ppl"], 4), "ppl_err": round(ppl["ppl_err"], 4), "scored": ppl["scored"],
                  "prompt_tokens": lg["prompt_tokens"], "top10": [x[0] for x in top],
                  "top10_logprob": [round(x[1], 5) for x in top]}))
PY
    echo "$p $t: $(tail -1 "$tmp/entries" | cut -c1-160)" >&2
    rm -f "$f"
  done
done
python3 - "$tmp/entries" "$out" "$prompt" $ctx $chunks <<'PY'
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1])]
doc = {"about": "llama.cpp (llref, commit ec98e2002) on kvserve synth's tiny presets; regenerate with scripts/synth-llamacpp.sh",
       "ppl": {"file": "eval/dev.txt", "ctx": int(sys.argv[4]), "chunks": int(sys.argv[5]), "cache": "f16", "flash_attn": 1},
       "prompt": sys.argv[3], "entries": entries}
with open(sys.argv[2], "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
PY
echo "wrote $out ($(wc -l < "$tmp/entries") entries)" >&2
