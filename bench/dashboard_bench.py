#!/usr/bin/env python3
"""The dashboard's data at scale (issue 20's benchmark; not a test): a daemon with 10,000 jobs,
one of them with 100,000 stored numeric values. Measures the server time (loopback, time to
the first byte, median of 7) and the size of what the pages read: the jobs page's
/api/jobs and /api/status, the job page's /api/jobs/NAME/series, and the daemon's RSS growth
while serving them.

    bench/dashboard_bench.py build/daemon/scraperd
"""
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

JOBS = 10_000
VALUES = 100_000


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fetch(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        first = r.read(1)
        t1 = time.perf_counter()
        body = first + r.read()
    return t1 - t0, len(body)


def main():
    scraperd = sys.argv[1]
    work = tempfile.mkdtemp(prefix="scraperd-dash-bench-")
    cfg = os.path.join(work, "jobs.yaml")
    db = os.path.join(work, "bench.db")
    with open(cfg, "w") as f:
        f.write("api: {listen: '127.0.0.1:0'}\njobs:\n")
        for i in range(JOBS):
            f.write(f"  - {{name: j{i:05d}, url: 'http://127.0.0.1:9/{i}', cron: '0 0 1 1 *'}}\n")
    log = open(os.path.join(work, "log"), "w+")
    daemon = subprocess.Popen([scraperd, "run", "--config", cfg, "--db", db], stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        port = None
        for _ in range(600):
            log.flush()
            text = open(log.name).read()
            if "api: listening on http://127.0.0.1:" in text:
                port = int(text.split("api: listening on http://127.0.0.1:")[1].split()[0])
                break
            time.sleep(0.1)
        assert port, text
        # 100,000 values of one job (10 URLs, a price each), written as the writer would.
        con = sqlite3.connect(db, timeout=30)
        for _ in range(600):
            if con.execute("SELECT count(*) FROM jobs").fetchone()[0] == JOBS:
                break
            time.sleep(0.1)
        rows = []
        t = time.time() - VALUES * 60
        for n in range(VALUES):
            at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t + n * 60)) + ".000"
            rows.append(("j00000", f"http://shop.example/p/{n % 10}", 200, 100, 1.0, at,
                         json.dumps({"title": "p", "price": round(random.uniform(5, 50), 2)})))
        con.executemany("INSERT INTO results (job, url, status, bytes, elapsed_ms, fetched_at, data) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        con.commit()
        con.close()

        base = f"http://127.0.0.1:{port}"
        rss0 = rss_kb(daemon.pid)
        print(f"{JOBS} jobs, {VALUES} values of job j00000; daemon RSS {rss0 / 1024:.1f} MB")
        for name, path in [("jobs page: /api/jobs", "/api/jobs"),
                           ("jobs page: /api/status", "/api/status"),
                           ("jobs page: /api/runs?since=24h", "/api/runs?since=24h&limit=10000"),
                           ("job page: /api/jobs/j00000/series", "/api/jobs/j00000/series"),
                           ("job page: results?limit=1000", "/api/jobs/j00000/results?limit=1000"),
                           ("page: /ui/ (html)", "/ui/"), ("page: /ui/app.js", "/ui/app.js"),
                           ("page: /ui/style.css", "/ui/style.css")]:
            times, size = [], 0
            for _ in range(7):
                dt, size = fetch(base + path)
                times.append(dt)
            print(f"{name:40s} median {statistics.median(times) * 1000:7.1f} ms   {size / 1024:8.1f} KB")
        rss1 = rss_kb(daemon.pid)
        print(f"daemon RSS after: {rss1 / 1024:.1f} MB (grew {(rss1 - rss0) / 1024:.1f} MB)")
    finally:
        daemon.terminate()
        daemon.wait()


if __name__ == "__main__":
    main()
