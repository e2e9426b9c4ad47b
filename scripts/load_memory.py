#!/usr/bin/env python3
"""Memory and load-to-first-token of a model served by kvserve (issue 13).

Starts `kvserve serve -m MODEL` on a free loopback port and measures, from
the moment the process starts:

  - load time: until GET /health answers 200 (the model is mapped, its
    weights repacked, the cache set up);
  - time to the first streamed token of a short prompt (POST /completion,
    "stream": true), and to the end of the answer;
  - the process's resident memory (/proc/PID/status) after load and after
    the answer — VmRSS split into the file mapping (RssFile) and anonymous
    memory (RssAnon) — and its peak (VmHWM);
  - the cache's bytes after the answer (GET /cache/usage total_bytes);

and checks the issue's bound: peak RSS ≤ file + cache + 200 MB. With --cold
the model file's pages are dropped from the page cache first
(posix_fadvise DONTNEED on this one file; pages another process maps stay),
so the load reads the file from disk.

    scripts/load_memory.py -m MODEL.gguf [--kvserve BIN] [-c 4096] [-t 2]
        [-n 16] [--cold] [--runs 1] [-- EXTRA SERVE FLAGS]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssFile", "RssAnon", "RssShmem"):
                out[k] = int(v.split()[0]) * 1024
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def one(a, extra):
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    if a.cold:
        drop_cache(a.model)
    cmd = [a.kvserve, "serve", "-m", a.model, "--port", str(port), "-c", str(a.c), "-t", str(a.t)] + extra
    log = tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=log, stderr=log)
    try:
        deadline = t0 + a.timeout
        while True:
            if p.poll() is not None:
                log.seek(0)
                sys.exit("kvserve serve exited with %d:\n%s" % (p.returncode, log.read().decode(errors="replace")))
            try:
                with urllib.request.urlopen(url + "/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("no /health within %d s" % a.timeout)
            time.sleep(0.02)
        t_ready = time.monotonic() - t0
        st_load = status(p.pid)
        body = json.dumps({"prompt": a.prompt, "n_predict": a.n, "temperature": 0, "stream": True}).encode()
        req = urllib.request.Request(url + "/completion", data=body, headers={"Content-Type": "application/json"})
        t_first = None
        with urllib.request.urlopen(req, timeout=a.timeout) as r:
            for line in r:
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                ev = json.loads(line[5:])
                if t_first is None and ev.get("content"):
                    t_first = time.monotonic() - t0
                if ev.get("stop"):
                    break
        t_done = time.monotonic() - t0
        st_done = status(p.pid)
        with urllib.request.urlopen(url + "/cache/usage", timeout=10) as r:
            cache = json.load(r).get("total_bytes", 0)
    finally:
        p.terminate()
        p.wait(timeout=30)
    return {"ready_s": t_ready, "first_token_s": t_first, "done_s": t_done, "load": st_load, "done": st_done,
            "cache_bytes": cache}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--kvserve", default="")
    ap.add_argument("-c", type=int, default=4096)
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument("--prompt", default="The history of the city begins with a small village on the river.")
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=600)
    a, extra = ap.parse_known_args()
    extra = [x for x in extra if x != "--"]
    if not a.kvserve:
        a.kvserve = os.path.join(tempfile.mkdtemp(prefix="load_memory"), "kvserve")
        subprocess.run(["go", "build", "-o", a.kvserve, "./cmd/kvserve"], cwd=ROOT, check=True)
    size = os.path.getsize(a.model)
    mb = lambda b: b / 1e6
    print("model %s: %.0f MB · serve -c %d -t %d %s · %s page cache" % (
        os.path.basename(a.model), mb(size), a.c, a.t, " ".join(extra), "cold" if a.cold else "warm"))
    print()
    print("| run | load s | first token s | %d tokens done s | RSS after load MB (file + anon) | RSS after answer MB (file + anon) | peak RSS MB | cache MB | file + cache + 200 MB | within |" % a.n)
    print("|---|---|---|---|---|---|---|---|---|---|")
    for i in range(a.runs):
        r = one(a, extra)
        bound = size + r["cache_bytes"] + 200e6
        peak = r["done"]["VmHWM"]
        L, D = r["load"], r["done"]
        print("| %d | %.2f | %.2f | %.2f | %.0f (%.0f + %.0f) | %.0f (%.0f + %.0f) | %.0f | %.1f | %.0f | %s |" % (
            i + 1, r["ready_s"], r["first_token_s"] or float("nan"), r["done_s"],
            mb(L["VmRSS"]), mb(L["RssFile"]), mb(L["RssAnon"]), mb(D["VmRSS"]), mb(D["RssFile"]), mb(D["RssAnon"]),
            mb(peak), mb(r["cache_bytes"]), mb(bound), "yes" if peak <= bound else "**no**"))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
