#!/usr/bin/env python3
"""The dashboard in a real browser: Debian's chromium, headless, driven over the Chrome DevTools
Protocol on --remote-debugging-pipe (fds 3 and 4, NUL-delimited JSON), against the real
scraperd binary with a database seeded by real runs of jobs on a loopback test server.

    dashboard_test.py SCRAPERD_BIN OUT_DIR

Checks: a page without the token goes to the login, and the form logs in; the jobs page lists
every job with its state; run now starts a run whose progress shows while it goes; pause and
resume round-trip; reload shows a refused file's errors and then the removed job; the job
page's chart has one point per stored value; a scraped "<script>" renders as text. Saves
screenshots of the three pages in OUT_DIR. Exit status 0 when every check passed.
"""
import base64
import http.server
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

TOKEN = "test-token"
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def eventually(probe, timeout=20.0, every=0.1):
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > end:
            return value
        time.sleep(every)


# ---- the site the jobs scrape ----

class Site(http.server.BaseHTTPRequestHandler):
    fetches = {}
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path
        if path.startswith("/p/"):
            with Site.lock:
                n = Site.fetches[path] = Site.fetches.get(path, 0) + 1
            num = int(path[3:])
            price = 10 * num + (n % 4) * 1.25 + n * 0.5  # moves every fetch
            body = f"<html><body><h1>Product {num}</h1><p class=price>{price:.2f}</p></body></html>"
            return self.reply(200, body)
        if path == "/xss":
            # The h1's text is markup: the dashboard must show it as text.
            return self.reply(200, "<html><body><h1>&lt;script&gt;window.pwned=1&lt;/script&gt;"
                                   "&lt;img src=x onerror=\"window.pwned=2\"&gt;</h1></body></html>")
        if path.startswith("/slow/"):
            time.sleep(1.0)
            return self.reply(200, "<html><body><h1>slow</h1></body></html>")
        self.reply(404, "not here")

    def reply(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def job_file(base, with_old=True):
    never = "cron: '0 0 1 1 *'"  # runs only when asked to
    text = f"""api: {{listen: '127.0.0.1:0', token: '{TOKEN}'}}
defaults: {{robots: ignore, retries: {{max: 0}}, per_host: {{rate: 100/s, burst: 100, concurrency: 2}}}}
jobs:
  - {{name: prices, urls: ['{base}/p/1', '{base}/p/2'], {never},
      extract: {{title: h1, price: {{css: .price, type: number}}}}}}
  - {{name: xss, url: '{base}/xss', {never}, extract: {{title: h1}}}}
  - {{name: slow, urls: ['{base}/slow/{{1..10}}'], {never}}}
  - {{name: failing, url: '{base}/missing', {never}}}
  - {{name: fresh, url: '{base}/p/3', {never}}}
  - {{name: sleepy, url: '{base}/p/4', {never}}}
"""
    if with_old:
        text += f"  - {{name: old, url: '{base}/p/5', {never}}}\n"
    return text


# ---- the daemon's API, as a script uses it ----

class Api:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method, path):
        req = urllib.request.Request(self.base + path, method=method,
                                     headers={"Authorization": "Bearer " + TOKEN})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def run_and_wait(self, job):
        # 409 while the job's previous run, already finished in the database, is still being
        # settled on the loop (its notifications): asked again, as a user clicking would.
        statuses = []

        def started():
            status, _ = self.call("POST", f"/api/jobs/{job}/run")
            statuses.append(status)
            return status == 202
        assert eventually(started) and set(statuses) <= {202, 409}, (job, statuses)

        def finished():
            _, runs = self.call("GET", f"/api/runs?job={job}&limit=1")
            return runs and runs[0]["finished_at"] is not None
        assert eventually(finished), job


# ---- chromium over CDP on a pipe ----

class Browser:
    def __init__(self, profile):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        # Move the child's ends above 4, so that dup2 onto 3 and 4 never clobbers one.
        a = fcntl_dup(to_child_r)
        b = fcntl_dup(from_child_w)
        os.close(to_child_r)
        os.close(from_child_w)

        def fds():
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [shutil.which("chromium") or "/usr/bin/chromium", "--headless=new",
             "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-dev-shm-usage", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-sync", "--mute-audio",
             "--hide-scrollbars", f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=fds, pass_fds=(3, 4), start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(profile, "stderr"), "wb"))
        os.close(a)
        os.close(b)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def send(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        while True:
            m = self.read()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]
            self.events.append(m)

    def read(self):
        while b"\0" not in self.buffer:
            chunk = os.read(self.from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(line)

    def open(self):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send("Target.attachToTarget",
                             {"targetId": target["targetId"], "flatten": True}, session=False)
        self.session = attached["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Log.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})

    def go(self, url):
        self.send("Page.navigate", {"url": url})
        eventually(lambda: self.js("document.readyState") == "complete", 10)

    def js(self, expr):  # in a block of its own: its `const`s do not clash with the next's
        r = self.send("Runtime.evaluate",
                      {"expression": "{" + expr + "\n}", "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expr, timeout=20.0):
        def probe():
            try:
                return self.js(expr)
            except RuntimeError:  # the page is still loading
                return None
        return eventually(probe, timeout, 0.2)

    def problems(self):
        """Uncaught exceptions and CSP violations the pages reported so far."""
        out = []
        for m in self.events:
            if m.get("method") == "Runtime.exceptionThrown":
                out.append(m["params"]["exceptionDetails"].get("text", "exception"))
            elif m.get("method") == "Log.entryAdded":
                entry = m["params"]["entry"]
                if entry.get("source") in ("security", "javascript", "violation"):
                    out.append(entry.get("text", ""))
        return out

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # chromium and every helper it started
        except ProcessLookupError:
            pass
        self.proc.wait()
        # The helpers are reparented and reaped by init: wait until the group is gone.
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)


def fcntl_dup(fd):
    import fcntl
    return fcntl.fcntl(fd, fcntl.F_DUPFD, 10)


def main():
    scraperd, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="scraperd-ui-")
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{site.server_address[1]}"
    cfg = os.path.join(work, "jobs.yaml")
    db = os.path.join(work, "ui.db")
    with open(cfg, "w") as f:
        f.write(job_file(base))
    log = open(os.path.join(work, "daemon.log"), "w+")
    daemon = subprocess.Popen([scraperd, "run", "--config", cfg, "--db", db],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    browser = None
    try:
        def port():
            log.flush()
            with open(log.name) as f:
                for line in f:
                    if "api: listening on http://127.0.0.1:" in line:
                        return int(line.split("127.0.0.1:")[1].split()[0])
        p = eventually(port, 20)
        assert p, "the daemon did not start: " + open(log.name).read()
        api = Api(p)
        ui = f"http://127.0.0.1:{p}"

        # Seed: five runs of prices (two URLs, a price that moves), the others once or never.
        for _ in range(5):
            api.run_and_wait("prices")
        for job in ("xss", "failing", "old"):
            api.run_and_wait(job)
        assert api.call("POST", "/api/jobs/sleepy/pause")[0] == 200

        profile = os.path.join(work, "profile")
        os.makedirs(profile)
        browser = Browser(profile)
        browser.open()

        # Without the token: the login form; with it: the jobs page.
        browser.go(ui + "/ui/")
        check(browser.js("location.pathname") == "/ui/login", "a page without the token goes to the login")
        browser.js("document.getElementById('token').value = 'wrong'; document.querySelector('form').submit()")
        check(browser.wait("location.search === '?failed=1' && !document.getElementById('failed').hidden"),
              "a wrong token is refused and said so")
        browser.js(f"document.getElementById('token').value = '{TOKEN}'; document.querySelector('form').submit()")
        check(browser.wait("location.pathname === '/ui/' && document.body.dataset.page === 'jobs'"),
              "the login form's token opens the jobs page")
        cookie_visible = browser.js("document.cookie")
        check(cookie_visible == "", "the login cookie is HttpOnly (not visible to scripts)")

        # The jobs page: every job, each in its state.
        states = "Object.fromEntries([...document.querySelectorAll('#jobs tbody tr[data-job]')]" \
                 ".map(r => [r.dataset.job, r.dataset.state]))"
        want = {"prices": "idle", "xss": "idle", "slow": "never run", "failing": "failing",
                "fresh": "never run", "sleepy": "paused", "old": "idle"}
        got = browser.wait(f"(() => {{ const s = {states}; return Object.keys(s).length === 7 && s; }})()")
        check(got == want, f"the jobs page lists every job with its state: {got}")
        check(browser.js("document.querySelector('tr[data-job=prices] td:nth-child(6)').textContent")
              == "2 / 0", "the last run's ok / failed counts")
        check(browser.js("!!document.querySelector('tr[data-job=prices] time[title$=\" UTC\"]')"),
              "times carry their UTC value in a title")

        # Filter by text (name or URL) and by state: sent to the server, which pages.
        names = "[...document.querySelectorAll('#jobs tbody tr[data-job]')].map(r => r.dataset.job).join()"

        def filtered(expected):
            got = browser.wait(f"(() => {{ const n = {names}; return n === '{expected}' && n; }})()")
            return got == expected
        browser.js("const t = document.getElementById('filter-text'); t.value = 'pri';"
                   "t.dispatchEvent(new Event('input'))")
        check(filtered("prices"), "the text filter keeps the matching jobs")
        check(browser.wait("document.getElementById('count').textContent === '1–1 of 1 matching jobs'"),
              "the count says how many match")
        check(browser.js("location.search") == "?q=pri", "the filter is kept in the address")
        browser.js("const t = document.getElementById('filter-text'); t.value = '';"
                   "t.dispatchEvent(new Event('input'));"
                   "const s = document.getElementById('filter-state'); s.value = 'never run';"
                   "s.dispatchEvent(new Event('change'))")
        check(filtered("fresh,slow"), "the state filter keeps the jobs in that state")
        browser.js("const s = document.getElementById('filter-state'); s.value = '';"
                   "s.dispatchEvent(new Event('change'))")
        check(filtered("failing,fresh,old,prices,sleepy,slow,xss"), "no filter: every job again")

        # Pages: ?per=3 asks the server for three jobs at a time; Next and Previous move.
        browser.go(ui + "/ui/?per=3")
        check(filtered("failing,fresh,old"), "the first page has the first three jobs by name")
        check(browser.wait("document.getElementById('count').textContent === '1–3 of 7 jobs'"
                           " && document.getElementById('prev').disabled"),
              "the first page: 1–3 of 7, no previous page")
        browser.js("document.getElementById('next').click()")
        check(filtered("prices,sleepy,slow"), "Next: the second page")
        browser.js("document.getElementById('next').click()")
        check(filtered("xss"), "Next: the last page")
        check(browser.wait("document.getElementById('next').disabled"
                           " && document.getElementById('count').textContent === '7–7 of 7 jobs'"),
              "the last page: no next page")
        check(browser.js("location.search") == "?offset=6&per=3", "the page is kept in the address")
        browser.js("document.getElementById('prev').click()")
        check(filtered("prices,sleepy,slow"), "Previous: back a page")
        browser.go(ui + "/ui/")
        check(filtered("failing,fresh,old,prices,sleepy,slow,xss"), "the default page holds every job")

        # Run now: the run starts and its progress shows while it goes, without a reload.
        browser.js("document.querySelector('button[data-action=run][data-job=slow]').click()")
        check(browser.wait("document.querySelector('tr[data-job=slow]').dataset.state === 'running'", 10),
              "run now starts a run: the row turns running")
        progressed = browser.wait("(() => { const p = document.querySelector('tr[data-job=slow] progress');"
                                  " return p && p.value >= 1 && p.max === 10 && p.value; })()", 15)
        check(bool(progressed), f"its progress shows live ({progressed} of 10 URLs done)")
        check(browser.wait("document.querySelector('tr[data-job=slow]').dataset.state === 'idle'", 30),
              "the finished run shows without a reload")
        check(browser.wait("document.querySelector('tr[data-job=slow] td:nth-child(6)').textContent === '10 / 0'", 5),
              "the finished run's counts")

        # Pause and resume round-trip, through the page and into the API.
        browser.js("document.querySelector('button[data-action=pause][data-job=prices]').click()")
        check(browser.wait("document.querySelector('tr[data-job=prices]').dataset.state === 'paused'", 10),
              "pause: the row turns paused")
        _, job = api.call("GET", "/api/jobs/prices")
        check(job["job"]["state"] == "paused", "pause: the API says paused")
        browser.js("document.querySelector('button[data-action=resume][data-job=prices]').click()")
        check(browser.wait("document.querySelector('tr[data-job=prices]').dataset.state === 'idle'", 10),
              "resume: the row is idle again")
        _, job = api.call("GET", "/api/jobs/prices")
        check(job["job"]["state"] != "paused", "resume: the API no longer says paused")

        # Reload: a broken file's errors shown as file:line:col, then a file without `old`.
        with open(cfg, "w") as f:
            f.write(job_file(base) + "  - {name: bad, every: soon}\n")
        browser.js("document.getElementById('reload').click()")
        errors = browser.wait("(() => { const e = document.querySelector('#reload-outcome pre.errors');"
                              " return e && e.textContent; })()", 10)
        check(bool(errors) and (cfg + ":") in errors, f"a refused reload shows its errors: {errors!r}")
        with open(cfg, "w") as f:
            f.write(job_file(base, with_old=False))
        # The outcome shows before the page's refresh ends and the button is enabled again: a
        # click on the disabled button would be lost.
        check(browser.wait("!document.getElementById('reload').disabled", 10),
              "the reload button is enabled again after a reload")
        browser.js("document.getElementById('reload').click()")
        check(browser.wait("document.querySelector('tr[data-job=old]').dataset.state === 'removed'", 10),
              "after a reload without it the job shows as removed")
        browser.screenshot(os.path.join(out_dir, "dashboard-jobs.png"))

        # The job page: one chart point per stored numeric value.
        con = sqlite3.connect(db)
        stored = con.execute("SELECT count(*) FROM results WHERE job = 'prices' AND "
                             "json_type(data, '$.price') IN ('integer', 'real')").fetchone()[0]
        con.close()
        browser.go(ui + "/ui/job?name=prices")
        points = browser.wait("(() => { const s = document.querySelector('svg[data-field=price]');"
                              " return s && [Number(s.dataset.points), s.querySelectorAll('circle').length,"
                              " s.querySelectorAll('polyline').length]; })()")
        check(stored == 10 and points == [stored, stored, 2],
              f"the price chart has one point per stored value ({points} for {stored}), a line per URL")
        check(browser.wait("document.querySelectorAll('#runs tbody tr').length === 5"), "the job's 5 runs are listed")
        check(browser.wait("document.querySelectorAll('#latest tbody tr').length === 2"),
              "the latest values: one row per URL")
        check(browser.wait("document.querySelectorAll('#changes tbody tr').length > 0"), "changes are listed")
        browser.screenshot(os.path.join(out_dir, "dashboard-job.png"))

        # The scraped markup is text.
        browser.go(ui + "/ui/job?name=xss")
        shown = browser.wait("(() => { const d = document.querySelector('#latest dd'); return d && d.textContent; })()")
        check(shown == "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">",
              f"a scraped <script> renders as text: {shown!r}")
        check(browser.js("typeof window.pwned === 'undefined' && !document.querySelector('main script, main img')"),
              "and nothing of it runs or becomes an element")

        # Errors across jobs.
        browser.go(ui + "/ui/errors")
        row = browser.wait("(() => { const r = document.querySelector('#groups tbody tr');"
                           " return r && [...r.cells].slice(0, 5).map(c => c.textContent); })()")
        host = base.split("//")[1]
        check(row == ["failing", "http", host, "1", "1"], f"the errors page groups by job, kind, host: {row}")
        check(browser.js("document.querySelector('#groups a').getAttribute('href')") == "/ui/job?name=failing",
              "and links to the job")
        browser.screenshot(os.path.join(out_dir, "dashboard-errors.png"))

        check(browser.problems() == [], f"no script error and no CSP violation: {browser.problems()}")

        # The phone width: no page wider than the screen but the tables' own scroll.
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        browser.go(ui + "/ui/")
        browser.wait("document.querySelectorAll('#jobs tbody tr[data-job]').length === 7")
        check(browser.js("document.documentElement.scrollWidth <= window.innerWidth + 1"),
              "on a phone the page fits the width (the table scrolls on its own)")
        light = browser.js("getComputedStyle(document.body).backgroundColor")
        browser.send("Emulation.setEmulatedMedia",
                     {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        dark = browser.js("getComputedStyle(document.body).backgroundColor")
        check(light == "rgb(255, 255, 255)" and dark == "rgb(15, 20, 25)",
              f"dark colours follow the system setting ({light} -> {dark})")
        browser.screenshot(os.path.join(out_dir, "dashboard-phone.png"))
    finally:
        if browser:
            browser.close()
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        site.shutdown()
        if failures:
            log.flush()
            print("daemon log:\n" + open(log.name).read()[-3000:])
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
