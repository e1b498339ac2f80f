"""Shared pieces of the real-framework queue scenarios (tests/queues/run.sh).

Each scenario starts a throwaway redis-server (and PostgreSQL where it needs one) on a free
127.0.0.1 port in its own temp dir, the exporter under test ($APPHEALTH_EXPORTER) scraping
it, and the framework's own workers; it makes jobs in every state through the framework's
API, then compares the framework's own counts with /metrics. Everything it starts is stopped
on exit (by PID, never by name).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
PG_BIN = "/usr/lib/postgresql/15/bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, check, timeout, interval=0.2):
    """Polls check() until it returns a truthy value; returns it, or raises after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except RuntimeError:
            raise
        except Exception as e:  # the server may not answer yet
            last = e
        time.sleep(interval)
    raise TimeoutError("%s: not within %.0f s (last: %r)" % (what, timeout, last))


class Scenario:
    """Temp dir, child processes and the pass/fail record of one scenario."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="apphealth-queues-%s-" % name)
        os.chmod(self.dir, 0o755)
        self.children = []  # (name, Popen)
        self.cleanups = []
        self.failures = 0
        self.checks = 0
        self.started = time.monotonic()

    def log(self, text):
        print("[%s %5.1fs] %s" % (self.name, time.monotonic() - self.started, text), flush=True)

    def check(self, ok, text):
        self.checks += 1
        if not ok:
            self.failures += 1
        print("%s - %s: %s" % ("ok  " if ok else "FAIL", self.name, text), flush=True)
        return ok

    def spawn(self, name, argv, env=None, cwd=None):
        logfile = open(os.path.join(self.dir, name + ".log"), "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        # Its own process group, so that a worker's children can be stopped with it.
        p = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, env=full_env, cwd=cwd or self.dir,
                             start_new_session=True)
        self.children.append((name, p))
        return p

    def child_log(self, name, lines=30):
        path = os.path.join(self.dir, name + ".log")
        if not os.path.exists(path):
            return ""
        with open(path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")

    def kill(self, p, sig=signal.SIGKILL):
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass

    def close(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:
                self.log("cleanup: %s" % e)
        for name, p in reversed(self.children):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name, p in reversed(self.children):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
            # Workers forked children (Celery's pool, RQ's work horses) into the same group.
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.failures == 0:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            self.log("kept %s for inspection" % self.dir)


class Redis:
    def __init__(self, sc):
        self.port = free_port()
        d = os.path.join(sc.dir, "redis")
        os.makedirs(d)
        self.pidfile = os.path.join(d, "r.pid")
        subprocess.run(["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--daemonize", "yes",
                        "--pidfile", self.pidfile, "--dir", d, "--save", "", "--appendonly", "no",
                        "--logfile", os.path.join(d, "redis.log")], check=True)
        sc.cleanups.append(self.stop)
        wait_until("redis-server on %d" % self.port, lambda: self.cli("PING") == "PONG", 20)

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.port)] + list(args), capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip()

    def stop(self):
        try:
            with open(self.pidfile) as f:
                pid = int(f.read())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Postgres:
    def __init__(self, sc):
        self.port = free_port()
        self.dir = os.path.join(sc.dir, "pg")
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
        subprocess.run(run_as + [PG_BIN + "/initdb", "-D", self.dir + "/data", "-U", "postgres", "--auth=trust"],
                       check=True, capture_output=True)
        subprocess.run(run_as + [PG_BIN + "/pg_ctl", "-D", self.dir + "/data", "-l", self.dir + "/pg.log", "-w", "-o",
                                 "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (self.port, self.dir),
                                 "start"], check=True, capture_output=True)
        sc.cleanups.append(self.stop)

    def stop(self):
        subprocess.run(["runuser", "-u", "postgres", "--", PG_BIN + "/pg_ctl", "-D", self.dir + "/data", "-m",
                        "immediate", "-w", "stop"], capture_output=True)

    def psql(self, sql):
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-At", "-c", sql],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()


SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


class Exporter:
    """The exporter under test as a child process; stopped with SIGTERM, its exit status and
    sanitizer reports checked by verify_clean_exit()."""

    def __init__(self, sc, config):
        self.sc = sc
        self.binary = os.environ.get("APPHEALTH_EXPORTER") or os.path.join(
            REPO, "build/release/exporter/apphealth_exporter")
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError("exporter binary %s not found (set APPHEALTH_EXPORTER)" % self.binary)
        self.port = free_port()
        self.config = os.path.join(sc.dir, "apphealth.yml")
        with open(self.config, "w") as f:
            f.write(config)
        self.proc = sc.spawn("exporter", [self.binary, "--config.file=" + self.config,
                                          "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=info"])
        def healthy():
            if self.proc.poll() is not None:
                raise RuntimeError("exporter exited with %s: %s" % (self.proc.returncode, sc.child_log("exporter", 5)))
            return self.get("/-/healthy") is not None
        wait_until("exporter /-/healthy", healthy, 30)

    def get(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path), timeout=5) as r:
            return r.read().decode()

    def metrics(self):
        out = {}
        for line in self.get("/metrics").splitlines():
            if line.startswith("#"):
                continue
            m = SERIES.match(line)
            if m:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return out

    def sample_count(self, target):
        """Samples published so far, from the collector's success timestamp changes."""
        return self.metrics().get('apphealth_collector_last_success_timestamp_seconds{collector="redis",target="%s"}'
                                  % target, 0)

    def verify_clean_exit(self):
        """SIGTERM, then exit status 0 and no sanitizer report in its output."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.sc.check(False, "exporter did not stop within 30 s of SIGTERM")
            return
        log = self.sc.child_log("exporter", 100000)
        reports = [l for l in log.splitlines() if "runtime error:" in l or "AddressSanitizer" in l
                   or "LeakSanitizer" in l]
        self.sc.check(code == 0 and not reports,
                      "exporter exited %s after SIGTERM%s" % (code, "; " + "; ".join(reports[:3]) if reports else ""))
        warnings = [l for l in log.splitlines() if "level=warn" in l or "level=error" in l]
        for w in warnings[:10]:
            self.sc.log("exporter said: " + w)


def series(name, **labels):
    return name + "{" + ",".join('%s="%s"' % (k, v) for k, v in labels.items()) + "}"


def jobs(target, queue, state):
    return series("apphealth_queue_jobs", target=target, queue=queue, state=state)


def agree(sc, what, framework_counts, timeout=60):
    """Polls until the exporter's series equal the framework's own numbers, both re-read on
    every attempt: framework_counts() returns {series: (value, tolerance)} and the exporter is
    scraped right after. Prints one line per series; returns the last exporter metrics."""
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        attempts += 1
        expected = framework_counts()
        metrics = sc.exporter.metrics()
        mismatched = [s for s, (v, tol) in expected.items() if s not in metrics or abs(metrics[s] - v) > tol]
        if not mismatched or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for s, (v, tol) in sorted(expected.items()):
        got = metrics.get(s)
        ok = got is not None and abs(got - v) <= tol
        sc.check(ok, "%s %s: framework %g, exporter %s%s" % (
            what, s, v, "absent" if got is None else "%g" % got, " (within %g)" % tol if tol else ""))
    sc.log("%s: %d comparisons, agreed after %d attempt(s)" % (what, len(expected), attempts))
    return metrics


def measure_worker_exit(sc, kill, series_name, before, limit, framework_view=None):
    """Kills a worker (kill()), then times how long until the exporter's series drops below
    `before`; checks it is within `limit` seconds. framework_view(), if given, is the
    framework's own worker count, polled beside it (in a thread: it may be slow to ask)."""
    import threading
    stop = threading.Event()
    framework_dropped = []

    def watch_framework(t0):
        while not stop.is_set():
            try:
                if framework_view() < before:
                    framework_dropped.append(time.monotonic() - t0)
                    return
            except Exception:
                pass
            stop.wait(0.5)

    t0 = time.monotonic()
    kill()
    watcher = None
    if framework_view is not None:
        watcher = threading.Thread(target=watch_framework, args=(t0,), daemon=True)
        watcher.start()
    while True:
        elapsed = time.monotonic() - t0
        value = sc.exporter.metrics().get(series_name)
        if value is not None and value < before:
            break
        if elapsed > limit + 30:
            break
        time.sleep(0.2)
    if watcher is not None:
        watcher.join(timeout=5 if framework_dropped else 0.1)
        stop.set()
    ok = value is not None and value < before and elapsed <= limit
    own = ("" if framework_view is None
           else "; the framework's own API dropped it after %.1f s" % framework_dropped[0] if framework_dropped
           else "; the framework's own API still counted it then")
    sc.check(ok, "SIGKILLed worker left %s after %.1f s (limit %g s)%s" % (series_name, elapsed, limit, own))
    return elapsed


def run(name, body):
    """Runs body(sc) and reports; exit status 1 on any failed check or error."""
    sc = Scenario(name)
    try:
        body(sc)
    except Exception as e:
        import traceback
        traceback.print_exc()
        sc.check(False, "scenario error: %s" % e)
        for child, _ in sc.children:
            sc.log("--- last lines of %s.log:\n%s" % (child, sc.child_log(child)))
    finally:
        sc.close()
    sc.log("%d checks, %d failed, %.0f s" % (sc.checks, sc.failures, time.monotonic() - sc.started))
    sys.exit(1 if sc.failures or sc.checks == 0 else 0)


def exporter_config(target, redis_port, queues_yaml, extra=""):
    return ("redis:\n  - name: %s\n    address: 127.0.0.1:%d\n    interval: 2s\n    timeout: 2s\n    queues:\n%s%s"
            % (target, redis_port, queues_yaml, extra))
