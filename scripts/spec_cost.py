#!/usr/bin/env python3
"""Speculative decoding at real model shapes: the cost side, and a projection.

Random-weight models of real shapes (`kvserve synth`) do not agree with each
other, so acceptance can only be measured on trained models (the 27M models
of ../shared, scripts/spec_bench.py). What a real shape can give is the
cost side, measured here with `kvserve bench`:

  - a verification pass over k tokens (`bench --verify -p k -n 0 -d DEPTH`:
    one forward pass over k tokens with logits at each, k / (pv t/s)), against one
    decode step of the target (`bench -p 0 -n N -d DEPTH`: 1 / (tg t/s));
  - a draft model's decode step (the same tg test on the draft).

From those and acceptance rates it prints the standard projection
(Leviathan et al. 2023, with a draft of gamma tokens and a per-token
acceptance rate alpha):

  tokens per target pass  E = (1 - alpha^(gamma+1)) / (1 - alpha)
  time per pass           gamma * c_draft + c_verify(gamma + 1)
  speedup                 E * c_step / (gamma * c_draft + c_verify(gamma + 1))

and, for prompt lookup (no draft cost), speedup = tokens per pass *
c_step / c_verify(tokens per pass), with the tokens per pass measured by
spec_bench.py (1 / forward passes per token) and the pass's size its
mean draft length plus one. Every projection is labelled as one: it
assumes the acceptance measured on the 27M models carries over.

    scripts/spec_cost.py --target T.gguf [--draft D.gguf ...] [--ks 1,2,3,4,5,8,17]
        [--depth 512] [-n 32] [-r 3] [--wrap 'flock -w 900 /tmp/bench.lock nice -n -20']
        [--alpha 0.6,0.7,0.8] [--gamma 2,3,4,5,8]
        [--lookup 'NAME:PASSES_PER_TOKEN:DRAFTED_PER_PASS' ...]

--wrap prefixes every bench run (one short run per lock). Needs a kvserve
binary (--kvserve, or built from this checkout).
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench(a, model, p, n, depth):
    cmd = shlex.split(a.wrap) + [a.kvserve, "bench", "-m", model, "-p", str(p), "-n", str(n), "-r", str(a.r),
                                 "-t", str(a.threads), "-o", "json"]
    if p:
        cmd.append("--verify")
    if depth:
        cmd += ["-d", str(depth)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("%s failed:\n%s" % (" ".join(cmd), r.stderr))
    res = json.loads(r.stdout)
    print("  %s: %s" % (" ".join(cmd[len(shlex.split(a.wrap)):]),
                        ", ".join("%s %.2f t/s" % (x["test"], x["tokens_per_second"]) for x in res)), file=sys.stderr)
    return res[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True)
    ap.add_argument("--draft", action="append", default=[])
    ap.add_argument("--ks", default="1,2,3,4,5,8,17")
    ap.add_argument("--depth", type=int, default=0)
    ap.add_argument("-n", type=int, default=32, help="tokens of the tg test (decode step)")
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--wrap", default="")
    ap.add_argument("--kvserve", default="")
    ap.add_argument("--alpha", default="0.6,0.7,0.8,0.9")
    ap.add_argument("--gamma", default="2,3,4,5,8")
    ap.add_argument("--lookup", action="append", default=[],
                    help="NAME:PASSES_PER_TOKEN:DRAFTED_PER_PASS from spec_bench.py")
    a = ap.parse_args()
    if not a.kvserve:
        a.kvserve = os.path.join(tempfile.mkdtemp(prefix="spec_cost"), "kvserve")
        subprocess.run(["go", "build", "-o", a.kvserve, "./cmd/kvserve"], cwd=ROOT, check=True)
    ks = sorted({int(k) for k in a.ks.split(",")})
    name = os.path.basename(a.target)

    print("measuring %s (depth %d, %d threads)" % (name, a.depth, a.threads), file=sys.stderr)
    tg = bench(a, a.target, 0, a.n, a.depth)
    c_step = 1 / tg["tokens_per_second"]
    c = {}
    for k in ks:
        pp = bench(a, a.target, k, 0, a.depth)
        c[k] = k / pp["tokens_per_second"]
    drafts = []
    for d in a.draft:
        r = bench(a, d, 0, a.n, a.depth)
        drafts.append((os.path.basename(d), 1 / r["tokens_per_second"]))

    def verify(k):
        """c_verify(k): measured, or interpolated linearly between the ks measured."""
        if k in c:
            return c[k]
        lo = max([x for x in c if x < k], default=min(c))
        hi = min([x for x in c if x > k], default=max(c))
        if lo == hi:
            return c[lo] * k / lo
        return c[lo] + (c[hi] - c[lo]) * (k - lo) / (hi - lo)

    print("### %s: measured (kvserve bench, depth %d, %d threads, median of %d)" % (name, a.depth, a.threads, a.r))
    print()
    print("decode step (tg%d): %.1f ms (%.2f t/s)" % (a.n, 1000 * c_step, 1 / c_step))
    print()
    print("| tokens in the pass k | pass ms | pass ÷ decode step | ms per token |")
    print("|---|---|---|---|")
    for k in ks:
        print("| %d | %.1f | %.2f | %.1f |" % (k, 1000 * c[k], c[k] / c_step, 1000 * c[k] / k))
    for dn, cd in drafts:
        print()
        print("draft %s decode step: %.1f ms = %.3f of the target's step" % (dn, 1000 * cd, cd / c_step))
    alphas = [float(x) for x in a.alpha.split(",")]
    gammas = [int(x) for x in a.gamma.split(",")]
    for dn, cd in drafts:
        print()
        print("**Projection, not a measurement** — draft %s, speedup over plain decode by draft length γ (rows) and "
              "per-token acceptance α (columns):" % dn)
        print()
        print("| γ | " + " | ".join("α = %.2f" % x for x in alphas) + " |")
        print("|---|" + "---|" * len(alphas))
        for g in gammas:
            row = []
            for al in alphas:
                e = (1 - al ** (g + 1)) / (1 - al)
                row.append("%.2f×" % (e * c_step / (g * cd + verify(g + 1))))
            print("| %d | %s |" % (g, " | ".join(row)))
    if a.lookup:
        print()
        print("**Projection, not a measurement** — prompt lookup (no draft cost) with the tokens per pass measured on "
              "kvtest-27m (spec_bench.py):")
        print()
        print("| configuration | tokens per pass | mean pass size | projected speedup |")
        print("|---|---|---|---|")
        for spec in a.lookup:
            ln, ppt, dpp = spec.rsplit(":", 2)
            tpp, size = 1 / float(ppt), 1 + float(dpp)
            print("| %s | %.2f | %.1f | %.2f× |" % (ln, tpp, size, tpp * c_step / verify(size)))
    json.dump({"target": a.target, "depth": a.depth, "step": c_step, "verify": c,
               "drafts": dict(drafts)}, sys.stderr)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
