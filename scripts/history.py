#!/usr/bin/env python3
"""history.py: measurements of scripts/history.sh against one bank file.

  history.py start ATM DB [ARCHIVE]   cold/warm start and RSS of atm serve
  history.py stmt ATM DB [ARCHIVE]    statement p50: first page, deep page, bad cursor
  history.py hog ATM DB PAIRS DUR     64-client ops/s with and without a session looping bad-cursor statements

Speaks the wire protocol (netproto/wire/PROTOCOL.md) directly.
"""
import json, os, socket, statistics, subprocess, sys, time

def conn(addr):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=30)
    return s, s.makefile("rb")

class Session:
    def __init__(self, addr):
        self.s, self.r = conn(addr)
        self.ts = 0
        self.n = 0
        hello = self.read()
        if hello.get("type") != "hello":
            raise SystemExit(f"no greeting: {hello}")
    def read(self):
        m = json.loads(self.r.readline())
        self.ts = max(self.ts, m.get("ts", 0)) + 1
        return m
    def req(self, **f):
        self.ts += 1
        self.n += 1
        m = {"proc": "history", "ts": self.ts, "id": f"h-{self.n}", **f}
        self.s.sendall((json.dumps(m) + "\n").encode())
        while True:
            a = self.read()
            if a.get("type") in ("reply", "error"):
                return a

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0

def start(atm, db, archive=None):
    """Starts atm serve on db; returns (seconds to the first greeting, RSS MiB, proc, addr)."""
    addr = f"127.0.0.1:{free_port()}"
    args = [atm, "serve", "--db", db, "--addr", addr, "--operator-token", "history-token"]
    if archive:
        args += ["--archive", archive]
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            s, r = conn(addr)
            line = json.loads(r.readline() or b"{}")
            s.close()
            if line.get("type") == "hello":
                break
        except OSError:
            pass
        if p.poll() is not None:
            raise SystemExit(f"atm serve exited {p.returncode}")
        time.sleep(0.005)
    return time.monotonic() - t0, rss_mib(p.pid), p, addr

def stmt(addr, account="880000000", pin="4242", n=200):
    s = Session(addr)
    a = s.req(type="login", account=account, pin=pin)
    if a.get("type") != "reply":
        raise SystemExit(f"login: {a}")
    def p50(**f):
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            a = s.req(type="statement", **f)
            ts.append(time.perf_counter() - t0)
            if a.get("type") != "reply":
                raise SystemExit(f"statement: {a}")
        return statistics.median(ts) * 1000
    # A deep page: 100 pages back.
    before = None
    for _ in range(100):
        a = s.req(type="statement", limit=50, **({"before": before} if before else {}))
        if not a.get("next"):
            break
        before = a["next"]
    out = {"first_ms": p50(), "deep_ms": p50(before=before) if before else None, "bad_cursor_ms": p50(before=2)}
    return out

def hog(atm, db, pairs, duration):
    """Median 64-client ops/s with one more session looping the statement
    with a bad cursor (before=2, limit 50), over the median without it, in
    alternated pairs on one server."""
    import threading
    _, _, p, addr = start(atm, db)
    try:
        def bench():
            r = subprocess.run([atm, "bench", "--addr", addr, "--clients", "64", "--duration", duration,
                                "--operator-token", "history-token", "--json"], capture_output=True, text=True, check=True)
            return json.loads(r.stdout)["ops_per_sec"]
        quiet, loud, loops = [], [], []
        for i in range(int(pairs)):
            for with_hog in ((False, True) if i % 2 == 0 else (True, False)):
                if not with_hog:
                    quiet.append(bench())
                    continue
                stop = threading.Event()
                n = [0]
                def loop():
                    s = Session(addr)
                    s.req(type="login", account="880000000", pin="4242")
                    while not stop.is_set():
                        s.req(type="statement", before=2, limit=50)
                        n[0] += 1
                t = threading.Thread(target=loop)
                t.start()
                loud.append(bench())
                stop.set()
                t.join()
                loops.append(n[0])
        q, l = statistics.median(quiet), statistics.median(loud)
        return {"ops_per_sec": round(q), "with_hog_ops_per_sec": round(l), "hog_ratio": round(l / q, 3),
                "hog_statements": statistics.median(loops)}
    finally:
        p.terminate(); p.wait()

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "start":
        secs, rss, p, addr = start(*sys.argv[2:])
        p.terminate(); p.wait()
        print(json.dumps({"start_s": round(secs, 3), "rss_start_mib": round(rss, 1)}))
    elif cmd == "hog":
        print(json.dumps(hog(*sys.argv[2:])))
    elif cmd == "stmt":
        _, _, p, addr = start(*sys.argv[2:])
        try:
            print(json.dumps({k: (round(v, 3) if v else v) for k, v in stmt(addr).items()}))
        finally:
            p.terminate(); p.wait()
