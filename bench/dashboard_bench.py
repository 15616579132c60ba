#!/usr/bin/env python3
"""The dashboard's data at scale (issue 20's benchmark; not a test): a daemon with 10,000 jobs
(10 finished runs each in the last 24 h, every 7th job's last one failed), one of them with
100,000 stored numeric values. For each page it requests what the page's script asks for
(app.js) and prints the server time of each request (loopback, time to the first byte, median
of 7; and the daemon's CPU time for it, from /proc: what counts on a busy machine), the page's weight (its HTML, script, stylesheet and API answers, before compression),
and the daemon's RSS growth while both pages are served 50 times more, against issue 20's
targets.

    bench/dashboard_bench.py build/daemon/scraperd
"""
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

JOBS = 10_000
RUNS = 10  # a job
VALUES = 100_000
ROUNDS = 50  # of both pages, for the RSS growth


def stamp(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}"


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


def cpu_s(pid):  # the daemon's CPU time (user + system) so far, in seconds
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(url, pid):
    """The median time of 7 requests, the daemon's mean CPU time for one, the answer's size."""
    times, size = [], 0
    cpu0 = cpu_s(pid)
    for _ in range(7):
        dt, size = fetch(url)
        times.append(dt)
    return statistics.median(times), (cpu_s(pid) - cpu0) / 7, size


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
                         json.dumps({"title": "p", "price": round(random.uniform(5, 50), 2)}),
                         1 if n % 20 < 10 else 0))  # every other fetch of a URL changed
        con.executemany("INSERT INTO results (job, url, status, bytes, elapsed_ms, fetched_at, data, "
                        "changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.commit()
        con.close()

        # Runs: 10 a job over the last 24 h, about 1 s each; every 7th job's last one failed.
        con = sqlite3.connect(db, timeout=30)
        now = time.time()
        runs = []
        for i in range(JOBS):
            for k in range(RUNS):
                t = now - 86400 + k * 8000 + i % 600
                failed = i % 7 == 0 and k == RUNS - 1
                runs.append((f"j{i:05d}", stamp(t), stamp(t + 0.05), stamp(t + 1 + (i * k) % 9 / 10),
                             "failed" if failed else "ok", 1, 0 if failed else 1, 1 if failed else 0))
        con.executemany("INSERT INTO runs (job, due_at, started_at, finished_at, status, urls, ok, "
                        "failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", runs)
        con.commit()
        con.close()

        base = f"http://127.0.0.1:{port}"
        assets = ["/ui/app.js", "/ui/style.css"]
        pages = {
            # What jobsPage() asks for: the first page of 100, and the daemon's status.
            "jobs page": ["/ui/", "/api/jobs?limit=100&offset=0&recent=30", "/api/status"],
            # What jobPage() asks for.
            "job page": ["/ui/job?name=j00000", "/api/jobs/j00000", "/api/runs?limit=50&job=j00000",
                         "/api/jobs/j00000/results?latest=1&limit=200",
                         "/api/jobs/j00000/results?changed=1&previous=1&limit=50",
                         "/api/jobs/j00000/series?points=400", "/api/errors/groups?job=j00000", "/api/status"],
        }
        extra = [("jobs page, filtered: q=j0999 (10 of 10,000)", "/api/jobs?limit=100&q=j0999&recent=30"),
                 ("jobs page, filtered: state=failing", "/api/jobs?limit=100&state=failing&recent=30"),
                 ("jobs page, last page (offset 9,900)", "/api/jobs?limit=100&offset=9900&recent=30"),
                 ("every job at once (/api/jobs)", "/api/jobs")]
        # One round of each first (the database's pages read once), then the baseline.
        for path in assets + [p for paths in pages.values() for p in paths]:
            fetch(base + path)
        rss0 = rss_kb(daemon.pid)
        print(f"{JOBS} jobs ({JOBS * RUNS} runs), {VALUES} values of job j00000; "
              f"daemon RSS {rss0 / 1024:.1f} MB")
        print(f"{'request':58s} {'median':>9s} {'CPU':>9s} {'size':>10s}")
        verdicts = []
        for page, paths in pages.items():
            weight, server, cpu = 0, 0.0, 0.0
            for path in paths + assets:
                dt, dcpu, size = timed(base + path, daemon.pid)
                weight += size
                print(f"  {path:56s} {dt * 1000:7.1f} ms {dcpu * 1000:6.1f} ms {size / 1024:8.1f} KB")
                if path.startswith("/api/"):
                    server = max(server, dt)
                    cpu = max(cpu, dcpu)
            verdicts.append((page, server, cpu, weight))
        for name, path in extra:
            dt, dcpu, size = timed(base + path, daemon.pid)
            print(f"  {name:56s} {dt * 1000:7.1f} ms {dcpu * 1000:6.1f} ms {size / 1024:8.1f} KB")
        for _ in range(ROUNDS):
            for paths in pages.values():
                for path in paths:
                    fetch(base + path)
        rss1 = rss_kb(daemon.pid)
        grew = (rss1 - rss0) / 1024
        print()
        print(f"{'target (issue 20)':42s} {'figure':>22s}")
        for page, server, cpu, weight in verdicts:
            print(f"{page + ': slowest request <= 50 ms':42s} {server * 1000:19.1f} ms "
                  f"{'met' if server <= 0.050 else 'MISSED'}   (its CPU time: {cpu * 1000:.1f} ms)")
            print(f"{page + ': weight <= 150 KB':42s} {weight / 1024:19.1f} KB "
                  f"{'met' if weight <= 150 * 1024 else 'MISSED'}")
        print(f"{'RSS growth <= 5 MB (' + str(ROUNDS) + ' rounds of both)':42s} "
              f"{grew:19.1f} MB {'met' if grew <= 5 else 'MISSED'}   "
              f"({rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MB)")
    finally:
        daemon.terminate()
        daemon.wait()
        shutil.rmtree(work, ignore_errors=True)  # ~60 MB of database


if __name__ == "__main__":
    main()
