#!/usr/bin/env bash
# kvserve beside llama.cpp at real model shapes (issue 13, item 1).
#
# Builds (or finds) llref, writes random-weight models of real shapes with
# `kvserve synth` (kept in $MODELS between runs), then for each configuration
# runs `kvserve bench` and `llref bench` interleaved — kvserve, llama.cpp,
# kvserve, llama.cpp, ... ROUNDS times — with the same protocol (random
# tokens, one untimed warm-up, R timed repetitions, 2 threads, f16 cache,
# flash attention on in llama.cpp). Every timed sample of all rounds is
# pooled: the table gives the median with min–max per engine, the ratio of
# the medians, and for decode kvserve's measured read bandwidth, the
# ceiling it implies (bandwidth ÷ bytes read per token) and both engines'
# fraction of that ceiling. The machine's CPU, the date and the load
# average (before and after) head the table.
#
# Usage: scripts/compare-llamacpp.sh [-w]   (-w: also replace the generated
# section of BENCHMARKS.md: the "compare-llamacpp" one, or with D or CACHES
# set the "compare-llamacpp-matrix" one, which has cache and depth columns;
# SECTION=NAME picks another <!-- NAME:begin --> ... <!-- NAME:end -->).
# Environment:
#   CONFIGS   "preset:type ..."  (default: llama-3.2-1b:f16 llama-3.2-1b:q8_0
#             llama-3.2-1b:q4_k_m qwen3-0.6b:f16)
#   P N R ROUNDS THREADS  pp tokens (512), tg tokens (128), repetitions per
#             run (3), interleaved rounds (2), threads (2); P=0 or N=0 skips
#   CTK CTV   cache types (f16)
#   CACHES    "f16 q8_0 q4_0": run every configuration with each cache type
#             (K and V alike; overrides CTK and CTV)
#   D         depths, e.g. "0 2048 8192": at depth 0 the pp and tg tests, at
#             each depth d > 0 tg only after an untimed d-token prefill
#             (`bench -d d -p 0`; PD=512 adds pp at depth), interleaved per
#             depth like the configurations. llama.cpp's prefill to 8192 takes
#             ~12 minutes per repetition on 2 cores: keep R=1, ROUNDS=1 there
#   WRAP      a prefix for every timed run, e.g. WRAP="flock -w 900
#             /tmp/bench.lock nice -n -20" to take a shared benchmark lock per
#             engine run (not for the whole script)
#   KVSERVE_FLAGS  extra flags for kvserve bench (e.g. --no-repack)
#   KVSERVE   a kvserve binary (default: built from this checkout)
#   LLREF_BIN llref (default ~/.cache/kvserve-llamacpp-ref/build/llref, built
#             with ../shared/llamacpp-ref/build.sh when missing)
#   MODELS    where the synthetic models live (~/.cache/kvserve-speed/models)
# Needs python3. Takes ~2-4 minutes per configuration on 2 cores.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE # llama.cpp threads sleep when idle (a shared machine)
cd "$(dirname "$0")/.."
write=0
[ "${1:-}" = -w ] && write=1
shared=${KVSERVE_SHARED:-../shared}
configs=${CONFIGS:-llama-3.2-1b:f16 llama-3.2-1b:q8_0 llama-3.2-1b:q4_k_m qwen3-0.6b:f16}
P=${P:-512} N=${N:-128} R=${R:-3} ROUNDS=${ROUNDS:-2} THREADS=${THREADS:-2}
CTK=${CTK:-f16} CTV=${CTV:-f16}
matrix=0
[ -n "${D:-}" ] || [ -n "${CACHES:-}" ] && matrix=1
D=${D:-0} PD=${PD:-0}
caches=${CACHES:-}
[ -n "$caches" ] || caches=$CTK/$CTV
section=${SECTION:-}
if [ -z "$section" ]; then
  section=compare-llamacpp
  [ $matrix = 1 ] && section=compare-llamacpp-matrix
fi
models=${MODELS:-$HOME/.cache/kvserve-speed/models}
llref=${LLREF_BIN:-$HOME/.cache/kvserve-llamacpp-ref/build/llref}
tmp=$(mktemp -d /tmp/compare-llamacpp-XXXX)
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$llref" ]; then
  echo "building llref (about 3 minutes)..." >&2
  llref=$("$shared/llamacpp-ref/build.sh")
fi
kvserve=${KVSERVE:-}
if [ -z "$kvserve" ]; then
  go build -o "$tmp/kvserve" ./cmd/kvserve
  kvserve=$tmp/kvserve
fi
mkdir -p "$models"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: > "$tmp/results.jsonl"
for c in $configs; do
  preset=${c%%:*} type=${c#*:}
  m=$models/$preset-$type.gguf
  if [ ! -f "$m" ]; then
    echo "writing $m..." >&2
    "$kvserve" synth --preset "$preset" --type "$type" -o "$m.tmp" >&2 && mv "$m.tmp" "$m"
  fi
  for cache in $caches; do
    ctk=${cache%%/*} ctv=${cache#*/}
    for round in $(seq "$ROUNDS"); do
      for d in $D; do
        if [ "$d" = 0 ]; then
          args=(-p "$P" -n "$N")
        else
          args=(-p "$PD" -n "$N" -d "$d")
        fi
        echo "$preset $type cache $cache depth $d: round $round/$ROUNDS kvserve" >&2
        # shellcheck disable=SC2086
        ${WRAP:-} "$kvserve" bench -m "$m" "${args[@]}" -r "$R" -t "$THREADS" -ctk "$ctk" -ctv "$ctv" ${KVSERVE_FLAGS:-} -o json 2>/dev/null |
          python3 -c 'import json,sys
for r in json.load(sys.stdin):
    r["engine"]="kvserve"; r["config"]=sys.argv[1]; r["cache"]=sys.argv[2]; print(json.dumps(r))' "$preset:$type" "$cache" >> "$tmp/results.jsonl"
        echo "$preset $type cache $cache depth $d: round $round/$ROUNDS llama.cpp" >&2
        # shellcheck disable=SC2086
        ${WRAP:-} "$llref" bench -m "$m" "${args[@]}" -r "$R" -t "$THREADS" -ctk "$ctk" -ctv "$ctv" 2>/dev/null |
          python3 -c 'import json,sys
for l in sys.stdin:
    if l.strip():
        r=json.loads(l); r["config"]=sys.argv[1]; r["cache"]=sys.argv[2]; print(json.dumps(r))' "$preset:$type" "$cache" >> "$tmp/results.jsonl"
      done
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
family=$(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
model=$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
avx512=$(grep -qw avx512f /proc/cpuinfo && echo "AVX-512" || echo "no AVX-512")
ncpu=$(nproc)
goversion=$(go env GOVERSION 2>/dev/null || echo "?")

python3 - "$tmp/results.jsonl" > "$tmp/table.md" <<EOF
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
matrix = $matrix == 1
configs = []
for r in rows:
    if (r["config"], r["cache"]) not in configs: configs.append((r["config"], r["cache"]))
print("<!-- generated by scripts/compare-llamacpp.sh: do not edit by hand -->")
print("$(date -u +%Y-%m-%d\ %H:%M) UTC · $cpu (family $family, model $model, $avx512), $ncpu CPUs · $goversion ·")
if matrix:
    print("load average before/after: $load_before / $load_after · $THREADS threads, caches $caches, depths $D, ${ROUNDS} interleaved rounds × ${R} repetitions")
else:
    print("load average before/after: $load_before / $load_after · $THREADS threads, cache $CTK/$CTV, ${ROUNDS} interleaved rounds × ${R} repetitions")
print("(median of all samples, min–max) · kvserve flags: \`${KVSERVE_FLAGS:-none}\`")
print()
if matrix:
    print("| model | cache | test | kvserve t/s | llama.cpp t/s | kvserve ÷ llama.cpp | MB/token | bandwidth GB/s | ceiling t/s | kvserve / ceiling | llama.cpp / ceiling |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
else:
    print("| model | test | kvserve t/s | llama.cpp t/s | kvserve ÷ llama.cpp | MB/token | bandwidth GB/s | ceiling t/s | kvserve / ceiling | llama.cpp / ceiling |")
    print("|---|---|---|---|---|---|---|---|---|---|")
def pool(eng, cfg, test):
    s, extra = [], []
    for r in rows:
        if r["engine"] == eng and (r["config"], r["cache"]) == cfg and r["test"] == test:
            s += r["samples_tokens_per_second"]; extra.append(r)
    return s, extra
for cfg in configs:
    tests = []
    for r in rows:
        if (r["config"], r["cache"]) == cfg and r["test"] not in tests: tests.append(r["test"])
    for t in tests:
        k, kr = pool("kvserve", cfg, t)
        l, _ = pool("llama.cpp", cfg, t)
        def fmt(s):
            return "%.1f (%.1f–%.1f)" % (statistics.median(s), min(s), max(s)) if s else "–"
        ratio = "%.2f×" % (statistics.median(k) / statistics.median(l)) if k and l else "–"
        mb = bw = ceil = ek = el = ""
        bpt = [r.get("bytes_per_token", 0) for r in kr if r.get("bytes_per_token")]
        bws = [r.get("bandwidth_bytes_per_second", 0) for r in kr if r.get("bandwidth_bytes_per_second")]
        if bpt and bws:
            c = statistics.median(bws) / statistics.median(bpt)
            mb = "%.0f" % (statistics.median(bpt) / 1e6)
            bw = "%.1f (%.1f–%.1f)" % (statistics.median(bws) / 1e9, min(bws) / 1e9, max(bws) / 1e9)
            ceil = "%.1f" % c
            ek = "%.2f" % (statistics.median(k) / c)
            el = "%.2f" % (statistics.median(l) / c) if l else "–"
        name = cfg[0] + " | " + cfg[1].replace("/", " / ") if matrix else cfg[0]
        if matrix and cfg[1].split("/")[0] == cfg[1].split("/")[-1]:
            name = cfg[0] + " | " + cfg[1].split("/")[0]
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (name, t, fmt(k), fmt(l), ratio, mb, bw, ceil, ek, el))
EOF
cat "$tmp/table.md"
if [ $write = 1 ]; then
  python3 - "$tmp/table.md" BENCHMARKS.md "$section" <<'EOF'
import sys
table = open(sys.argv[1]).read()
doc = open(sys.argv[2]).read()
b, e = "<!-- %s:begin -->" % sys.argv[3], "<!-- %s:end -->" % sys.argv[3]
if b not in doc or e not in doc:
    sys.exit("BENCHMARKS.md has no " + b + " ... " + e + " section")
head, rest = doc.split(b, 1)
_, tail = rest.split(e, 1)
open(sys.argv[2], "w").write(head + b + "\n" + table + e + tail)
EOF
  echo "BENCHMARKS.md updated (section $section)" >&2
fi
