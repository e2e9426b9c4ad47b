#!/usr/bin/env python3
"""Issue 17's figure against a real server: eight users take ten turns each,
round robin, over two slots under a cache budget that fits one conversation
(f16-only ladders, so the budget drops idle slots' caches rather than demoting
pages). Runs: eight slots with no budget (the reference outputs), two slots
without the tiers, two slots with --cache-ram and --cache-disk (the server is
restarted on the same directory after turn 8). Prints the prompt tokens
evaluated (timings.prompt_n summed), whether every greedy output equals the
reference, and the server's resident memory: after loading (idle) and its peak
while serving (sampled every 20 ms from /proc), beside the budget.

Usage: scripts/tiers_users.py KVSERVE_BINARY [PORT]   (the embedded model, 127.0.0.1 only)
"""
import json, os, shutil, subprocess, sys, tempfile, threading, time, urllib.request

BIN = sys.argv[1]
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 18795
USERS, TURNS, RESTART_AT = 8, 10, 8
BUDGET = 20 * 64 << 10  # 20 16-token f16 pages of kvtest-27m: one conversation, not two
URL = f"http://127.0.0.1:{PORT}"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, args):
        self.p = subprocess.Popen([BIN, "serve", "--port", str(PORT), "--cache-page-tokens", "16", "-c", "4096"] + args,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                if b"ok" in urllib.request.urlopen(URL + "/health", timeout=1).read():
                    break
            except Exception:
                time.sleep(0.1)
        else:
            raise SystemExit("server did not start")
        time.sleep(0.5)
        self.idle = rss_kib(self.p.pid)
        self.peak = self.idle
        self.stop = False
        self.t = threading.Thread(target=self.sample)
        self.t.start()

    def sample(self):
        while not self.stop:
            try:
                self.peak = max(self.peak, rss_kib(self.p.pid))
            except Exception:
                return
            time.sleep(0.02)

    def close(self):
        self.stop = True
        self.t.join()
        self.p.terminate()
        self.p.wait()


def post(path, body):
    req = urllib.request.Request(URL + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=600))


def tokenize(text, bos):
    return post("/tokenize", {"content": text, "add_special": bos})["tokens"]


def conversations(pinned, turns, convs, tally, outs):
    for k in turns:
        for u in range(USERS):
            if convs[u] is None:
                convs[u] = tokenize(f"A conversation with user {u}.", True)
            convs[u] += tokenize(f" User {u} asks question number {k} about the weather in the mountains today.", False)
            r = post("/completion", {"prompt": convs[u], "n_predict": 8, "temperature": 0, "ignore_eos": True,
                                     "cache_prompt": True, "id_slot": u if pinned else -1, "return_tokens": True})
            tally["prompt_n"] += r["timings"]["prompt_n"]
            outs.append(r["tokens"])
            convs[u] += r["tokens"]


def run(name, args, restart=False):
    tally, outs, convs = {"prompt_n": 0}, [], [None] * USERS
    s = Server(args)
    conversations("slots 8" in name, range(RESTART_AT if restart else TURNS), convs, tally, outs)
    idle, peak = s.idle, s.peak
    s.close()
    if restart:
        s = Server(args)
        conversations(False, range(RESTART_AT, TURNS), convs, tally, outs)
        peak = max(peak, s.peak)
        s.close()
    return tally["prompt_n"], outs, idle, peak


tmp = tempfile.mkdtemp()
try:
    budget = ["--cache-budget", str(BUDGET), "--cache-ladder-k", "f16", "--cache-ladder-v", "f16"]
    ref = run("slots 8", ["-np", "8"])
    plain = run("two slots", ["-np", "2"] + budget)
    tiers = run("two slots, tiers", ["-np", "2"] + budget + ["--cache-ram", "4MiB", "--cache-disk", tmp], restart=True)
    print(f"budget {BUDGET} bytes ({BUDGET >> 10} KiB); load average {os.getloadavg()[0]:.1f}")
    for name, (n, outs, idle, peak) in [("8 slots, no budget", ref), ("2 slots, budget, no tiers", plain),
                                         ("2 slots, budget, RAM 4MiB + disk tier, restart after turn 8", tiers)]:
        print(f"{name}: prompt tokens evaluated {n}; outputs equal the 8 slots' {outs == ref[1]}; "
              f"RSS idle {idle} KiB, peak {peak} KiB (+{peak - idle} KiB)")
    print(f"ratio without/with the tiers: {plain[0] / tiers[0]:.2f}x")
finally:
    shutil.rmtree(tmp)
