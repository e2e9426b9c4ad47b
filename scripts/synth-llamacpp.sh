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
# Entries: every tiny preset in each weight type (seed 1) and, for f16
# weights, seed 2 and the q8_0 and q4_0 caches; and one real-shape preset
# per architecture cut to a few layers (REAL="preset:layers:type ...").
# Usage: scripts/synth-llamacpp.sh [OUT.json]   (TYPES="f16 q8_0 q4_k_m",
# PRESETS="tiny-..." to score only some presets, REAL="" for none: a new family
# of presets goes to its own testdata/llamacpp/synth-<topic>.json, which the
# parity test reads beside synth.json)
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE # llama.cpp threads sleep when idle (a shared machine)
cd "$(dirname "$0")/.."
out=${1:-testdata/llamacpp/synth.json}
llref=${LLREF_BIN:-$HOME/.cache/kvserve-llamacpp-ref/build/llref}
shared=${KVSERVE_SHARED:-../shared}
types=${TYPES:-f16 q8_0 q4_k_m}
real=${REAL-llama-3.2-1b:2:q8_0 qwen2.5-0.5b:2:q8_0 qwen3-0.6b:2:q8_0 gemma-3-1b:6:q8_0 gemma-2-2b:2:q8_0 phi-4-mini:2:q8_0 ministral-3-8b:2:q8_0}
prompt="The history of the city begins with a small village on the river, where"
ctx=256
chunks=4
tmp=$(mktemp -d /tmp/synth-llamacpp-XXXX)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/kvserve" ./cmd/kvserve
presets=${PRESETS:-$("$tmp/kvserve" synth --list | awk '$1 ~ /^tiny-/ {print $1}')}
: > "$tmp/entries"
# one PRESET TYPE SEED CACHE LAYERS: write the file, run llama.cpp, append an entry.
one() {
  local p=$1 t=$2 seed=$3 cache=$4 layers=$5
  local f=$tmp/$p-$t-$seed.gguf
  local lflag=()
  [ "$layers" != 0 ] && lflag=(--layers "$layers")
  "$tmp/kvserve" synth --preset "$p" --type "$t" --seed "$seed" "${lflag[@]}" -o "$f" 2>/dev/null
  local sha
  sha=$(sha256sum "$f" | cut -d' ' -f1)
  "$llref" ppl -m "$f" -f "$shared/eval/dev.txt" -c $ctx --chunks $chunks -ctk "$cache" -ctv "$cache" 2>/dev/null | grep '^{' > "$tmp/ppl.json"
  # llama.cpp's own noise: the same run without flash attention (which it
  # allows only with an f16 cache).
  echo '{}' > "$tmp/ppl0.json"
  if [ "$cache" = f16 ]; then
    "$llref" ppl -m "$f" -f "$shared/eval/dev.txt" -c $ctx --chunks $chunks -fa 0 2>/dev/null | grep '^{' > "$tmp/ppl0.json"
  fi
  "$llref" logits -m "$f" -prompt "$prompt" -n 1 --top 10 -ctk "$cache" -ctv "$cache" 2>/dev/null | grep '^{' > "$tmp/logits.json"
  python3 - "$p" "$t" "$seed" "$sha" "$cache" "$layers" "$tmp/ppl.json" "$tmp/logits.json" "$tmp/ppl0.json" >> "$tmp/entries" <<'PY'
import json, sys
p, t, seed, sha, cache, layers, pplf, logf, ppl0f = sys.argv[1:]
ppl = json.load(open(pplf))
ppl0 = json.load(open(ppl0f))
lg = json.load(open(logf))
top = lg["top"][0]
e = {"preset": p, "type": t, "seed": int(seed), "sha256": sha}
if cache != "f16":
    e["cache"] = cache
if layers != "0":
    e["layers"] = int(layers)
if "ppl" in ppl0:
    e["ppl_fa0"] = round(ppl0["ppl"], 4)
e.update({"ppl": round(ppl["ppl"], 4), "ppl_err": round(ppl["ppl_err"], 4), "scored": ppl["scored"],
          "prompt_tokens": lg["prompt_tokens"], "top10": [x[0] for x in top],
          "top10_logprob": [round(x[1], 5) for x in top]})
print(json.dumps(e))
PY
  echo "$p $t seed $seed cache $cache layers $layers: $(tail -1 "$tmp/entries" | cut -c1-140)" >&2
  rm -f "$f"
}
for p in $presets; do
  for t in $types; do
    one "$p" "$t" 1 f16 0
  done
  one "$p" f16 2 f16 0
  one "$p" f16 1 q8_0 0
  one "$p" f16 1 q4_0 0
done
for r in $real; do
  IFS=: read -r p l t <<< "$r"
  one "$p" "$t" 1 f16 "$l"
done
python3 - "$tmp/entries" "$out" "$prompt" $ctx $chunks <<'PY'
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1])]
doc = {"about": "llama.cpp (llref, commit ec98e2002) on kvserve synth's tiny presets; regenerate with scripts/synth-llamacpp.sh",
       "ppl": {"file": "eval/dev.txt", "ctx": int(sys.argv[4]), "chunks": int(sys.argv[5]), "cache": "f16 unless the entry says", "flash_attn": 1},
       "prompt": sys.argv[3], "entries": entries}
with open(sys.argv[2], "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
PY
echo "wrote $out ($(wc -l < "$tmp/entries") entries)" >&2
