#!/usr/bin/env python3
"""Issue 18: per-layer cache types under a bits budget, from scripts/layer_kld.sh's screen.

Each line of the screen is "MODEL K|V LAYER KLD": the KLD with cb2 on that
layer's K or V cache only. A type's damage is predicted as the cb2 damage
times the type's relative squared error on rotated Gaussian blocks over
cb2's (cb3 0.029, cb4 0.0070, q4_0 0.0071, q5_0 ~0.0018, q8_0 ~0.00004,
against cb2's 0.105); damages are summed over layers. A Lagrangian sweep
picks, for each layer and side, the type minimising damage + lambda * bits,
and keeps the lowest predicted KLD whose average bits (K with centred keys:
+0.0625 for the per-page means at 256-token pages) fit the budget.
Usage: layer_alloc.py SCREEN BUDGET [TYPES]   (TYPES default cb2,cb3,cb4,q5_0,q8_0)

Superseded by `kvserve tune-cache` (internal/cachetune), which measures the
screen in-process and allocates exactly as this script does (`--screen FILE`
re-allocates a saved screen). Kept as the reference the Go port is checked
against: TestAllocateMatchesScript's expected values are this script's output.
The screen it read came from scripts/layer_kld.sh (removed): lines
"MODEL K|V LAYER KLD".
"""
import sys

RATIO = {"cb2": 1, "cb3": 0.28, "cb4": 0.067, "q4_0": 0.068, "q5_0": 0.017, "q5_1": 0.014, "q8_0": 0.0004}
BITS = {"cb2": 2.5, "cb3": 3.25, "cb4": 4.25, "q4_0": 4.5, "q5_0": 5.5, "q5_1": 6.0, "q8_0": 8.5}
KEY_MEANS = 0.0625


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    budget = float(sys.argv[2])
    types = sys.argv[3].split(",") if len(sys.argv) > 3 else ["cb2", "cb3", "cb4", "q5_0", "q8_0"]
    for t in types:
        if t not in RATIO:
            sys.exit("unknown type %r (known: %s)" % (t, ", ".join(RATIO)))
    items = []
    for line in open(sys.argv[1]):
        f = line.split()
        if len(f) != 4 or f[1] not in ("K", "V"):
            continue
        items.append((f[1], int(f[2]), float(f[3])))
    if not items:
        sys.exit("no screen lines in " + sys.argv[1])

    def bits(side, t):
        return BITS[t] + (KEY_MEANS if side == "K" else 0)

    best = None
    for i in range(3000):
        lam = 10 ** (-7 + i * 0.003)
        cfg = [(s, l, min(types, key=lambda t: d * RATIO[t] + lam * bits(s, t))) for s, l, d in items]
        avg = sum(bits(s, t) for s, l, t in cfg) / len(cfg)
        pred = sum(d * RATIO[t] for (s, l, d), (_, _, t) in zip(items, cfg))
        if avg <= budget and (best is None or pred < best[0]):
            best = (pred, avg, cfg)
    if best is None:
        sys.exit("no allocation fits %.3f bits" % budget)
    pred, avg, cfg = best
    print("predicted KLD %.3g (screen's chunks), %.3f bits per value" % (pred, avg))
    for side in "KV":
        layers = ",".join("%d:%s" % (l, t) for s, l, t in cfg if s == side)
        print("--cache-type-%s-layers %s" % (side.lower(), layers))


main()
