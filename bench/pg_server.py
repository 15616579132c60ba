"""A private PostgreSQL for bench/run's P and C workloads, as the tests start theirs
(tests/support/pg_cluster.cpp): `initdb` into a temporary directory, `pg_ctl start` with no TCP
listener and its Unix socket in that directory, run as the `postgres` system user when we are
root; stopped and removed at the end, also on Ctrl-C or a failure (use it as a context manager).

Unlike the tests' cluster, durability is left as a production server has it: fsync,
synchronous_commit and full_page_writes at their defaults (on). What a tuned production box
would set, and this one does (SETTINGS below): shared_buffers 256MB (the default 128MB is
sized for a small shared machine; production gives it ~25 % of RAM, this 2-core VM is shared
by the whole team), max_wal_size 2GB and checkpoint_timeout 15min (fewer checkpoints, so
fewer full-page images, under a steady stream of inserts). `initdb --no-sync` only skips
initdb's own flush of the files it creates: the server it leaves behind syncs as usual.
"""
import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile

SETTINGS = {
    "shared_buffers": "256MB",
    "max_wal_size": "2GB",
    "checkpoint_timeout": "15min",
    "max_connections": "100",
}


def bin_dir():
    """Where initdb, pg_ctl and postgres are: $SCRAPERD_PG_BIN, else the newest
    /usr/lib/postgresql/*/bin (Debian's layout), else None."""
    env = os.environ.get("SCRAPERD_PG_BIN")
    if env:
        return env
    found = [d for d in glob.glob("/usr/lib/postgresql/*/bin")
             if os.path.exists(os.path.join(d, "pg_ctl"))]
    found.sort(key=lambda d: int(re.sub(r"\D", "", d.split("/")[-2]) or 0))
    return found[-1] if found else None


def why_absent():
    """None when a private server can be started here, else why not (one line)."""
    d = bin_dir()
    if not d or not all(os.path.exists(os.path.join(d, b)) for b in ("initdb", "pg_ctl",
                                                                     "postgres")):
        return ("PostgreSQL is not installed (no initdb/pg_ctl/postgres under "
                "/usr/lib/postgresql/*/bin nor $SCRAPERD_PG_BIN; scripts/install-deps installs "
                "it)")
    if not shutil.which("psql"):
        return "psql is not installed (postgresql-client)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
        if not os.path.exists("/usr/bin/setpriv"):
            return "running as root and /usr/bin/setpriv (util-linux) is missing"
    return None


class PgServer:
    """with PgServer() as pg: pg.url(pg.create_database("w1")) ..."""

    def __init__(self):
        self.bin = bin_dir()
        self.dir = None

    def _as_server(self, argv):
        if os.geteuid() == 0:
            return ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
                    "--"] + argv
        return argv

    def _run(self, argv, log_name):
        log = os.path.join(self.dir, log_name)
        with open(log, "w") as out:
            code = subprocess.run(self._as_server(argv), stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT).returncode
        if code != 0:
            text = open(log).read()
            server_log = os.path.join(self.dir, "server.log")
            if os.path.exists(server_log):
                text += open(server_log).read()[-2000:]
            raise SystemExit(f"bench: {' '.join(argv[:1])} failed ({code}): {text[-3000:]}")

    def start(self):
        # Short: a Unix socket's path must fit in ~107 bytes.
        self.dir = tempfile.mkdtemp(prefix="scraperd-bench-pg-", dir="/tmp")
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        data = os.path.join(self.dir, "data")
        self._run([os.path.join(self.bin, "initdb"), "-D", data, "-U", "scraperd",
                   "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"], "initdb.log")
        with open(os.path.join(data, "postgresql.conf"), "a") as f:
            f.write(f"listen_addresses = ''\nunix_socket_directories = '{self.dir}'\n")
            for k, v in SETTINGS.items():
                f.write(f"{k} = {v}\n")
        self._run([os.path.join(self.bin, "pg_ctl"), "-D", data, "-l",
                   os.path.join(self.dir, "server.log"), "-w", "-t", "60", "start"],
                  "pg_ctl.log")
        return self

    def stop(self):
        # postmaster.pid: also a server whose start was interrupted (Ctrl-C during pg_ctl).
        if self.dir and os.path.exists(os.path.join(self.dir, "data", "postmaster.pid")):
            try:
                self._run([os.path.join(self.bin, "pg_ctl"), "-D",
                           os.path.join(self.dir, "data"), "-m", "fast", "-w", "-t", "60",
                           "stop"], "stop.log")
            except SystemExit:  # then at once: nothing of it may outlive the benchmark
                subprocess.run(self._as_server([os.path.join(self.bin, "pg_ctl"), "-D",
                                                os.path.join(self.dir, "data"), "-m",
                                                "immediate", "-w", "stop"]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def version(self):
        return self.psql("SHOW server_version", "postgres")

    def url(self, db="postgres"):
        return f"postgresql://scraperd@/{db}?host={self.dir}"

    def psql(self, sql, db="postgres"):
        """Runs `sql`; its output (unaligned, tuples only), stripped."""
        p = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                            self.url(db), "-c", sql], capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"bench: psql failed ({sql}): {p.stderr.strip()}")
        return p.stdout.strip()

    def create_database(self, name, template=None):
        self.psql(f"DROP DATABASE IF EXISTS {name}")
        self.psql(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        return name

    def drop_database(self, name):
        self.psql(f"DROP DATABASE IF EXISTS {name}")

    def postmaster_pid(self):
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            return int(f.readline())

    def cpu_seconds(self):
        """CPU seconds the server has used so far, every process of it: the postmaster's own,
        its live children's (checkpointer, WAL writer, backends...) and the reaped backends'
        (the postmaster's cutime/cstime). The difference over a run is what that run cost the
        server."""
        tick = os.sysconf("SC_CLK_TCK")
        root = self.postmaster_pid()

        def stat(pid):
            s = open(f"/proc/{pid}/stat").read()
            return s[s.rindex(")") + 2:].split()

        total = 0
        f = stat(root)
        total += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                f = stat(pid)
                if int(f[1]) == root:
                    total += int(f[11]) + int(f[12])
            except (OSError, ValueError, IndexError):
                pass
        return total / tick
