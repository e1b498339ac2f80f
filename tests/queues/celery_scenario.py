"""Celery 5 (Debian's python3-celery) on Redis against the exporter: waiting, reserved,
scheduled (countdown and retry) and active tasks, workers per queue and busy workers, as
Celery's own kombu channel and `inspect` count them; then a worker SIGKILLed."""
import collections
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "celery"))
import harness  # noqa: E402
from harness import jobs, series  # noqa: E402

QUEUES = ["celery", "emails", "reports", "other"]


def body(sc):
    redis = harness.Redis(sc)
    os.environ["BROKER_URL"] = "redis://127.0.0.1:%d/0" % redis.port
    import tasks  # the app reads BROKER_URL at import

    sc.exporter = harness.Exporter(sc, harness.exporter_config(
        "broker", redis.port, "      - preset: celery\n        queues: [%s]\n" % ", ".join(QUEUES)))
    celery = ["/usr/bin/python3", "-m", "celery", "-A", "tasks", "worker", "--without-mingle", "--without-gossip",
              "--prefetch-multiplier=1", "-P", "prefork", "--loglevel=INFO"]
    env = {"BROKER_URL": os.environ["BROKER_URL"], "PYTHONPATH": os.path.join(harness.HERE, "celery")}
    sc.spawn("worker-a", celery + ["-Q", "celery,emails", "-c", "2", "-n", "a@%h"], env=env)
    worker_b = sc.spawn("worker-b", celery + ["-Q", "reports", "-c", "1", "-n", "b@%h"], env=env)
    app = tasks.app
    inspect = app.control.inspect(timeout=2.0)

    def workers_up():
        replies = inspect.ping() or {}
        return len(replies) == 2
    harness.wait_until("both Celery workers answer ping", workers_up, 90, interval=1)

    # Jobs in every state Celery has on a Redis broker.
    tasks.boom.delay()                                       # fails (only a result backend keeps that)
    tasks.flaky.delay()                                      # retries in an hour: scheduled
    for _ in range(3):
        tasks.sleepy.apply_async((1,), countdown=3600)       # countdown: scheduled
    for _ in range(5):
        tasks.sleepy.apply_async((600,), queue="emails")     # 2 run, the rest reserved or waiting
    for _ in range(3):
        tasks.sleepy.apply_async((600,), queue="reports")    # 1 runs, 1 reserved, 1 waiting
    for _ in range(4):
        tasks.quick.apply_async(queue="other")               # no worker consumes "other"

    def counts():
        out = {}
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            for q in QUEUES:
                try:
                    waiting = channel.queue_declare(queue=q, passive=True).message_count
                except Exception:  # never declared: no such queue, nothing waiting
                    waiting = 0
                out[jobs("broker", q, "waiting")] = (waiting, 0)
        by_state = {state: collections.Counter() for state in ("active", "reserved", "scheduled")}
        active = inspect.active() or {}
        for state, replies in (("active", active), ("reserved", inspect.reserved() or {}),
                               ("scheduled", inspect.scheduled() or {})):
            for worker, items in replies.items():
                for item in items:
                    request = item.get("request", item)  # scheduled entries wrap the request
                    by_state[state][request["delivery_info"]["routing_key"]] += 1
        queues_of = {w: {q["name"] for q in qs} for w, qs in (inspect.active_queues() or {}).items()}
        for q in QUEUES:
            for state in ("active", "reserved", "scheduled"):
                out[jobs("broker", q, state)] = (by_state[state][q], 0)
            serving = [w for w, names in queues_of.items() if q in names]
            out[series("apphealth_queue_workers", target="broker", queue=q)] = (len(serving), 0)
            out[series("apphealth_queue_workers_busy", target="broker", queue=q)] = (
                sum(1 for w in serving if active.get(w)), 0)
        return out

    # Wait for the work to settle: the retry has happened and every long task has started.
    def settled():
        c = counts()
        sc.last = {k: v for k, (v, _) in c.items() if v}
        # The retry's new message waits in the list or is held for its ETA (prefetch permitting).
        return (c[jobs("broker", "celery", "scheduled")][0] + c[jobs("broker", "celery", "waiting")][0] == 4
                and c[jobs("broker", "emails", "active")][0] == 2
                and c[jobs("broker", "reports", "active")][0] == 1)
    try:
        harness.wait_until("Celery workers settled (3 running, the retry re-sent)", settled, 90, interval=1)
    except TimeoutError:
        sc.log("Celery's counts: %s" % sc.last)
        raise
    metrics = harness.agree(sc, "celery", counts)
    sc.check(not any(k.startswith("apphealth_queue_oldest_job_age_seconds") for k in metrics),
             "no oldest-job age: kombu messages carry no enqueue time")
    sc.check(metrics.get('apphealth_collector_up{collector="redis",target="broker"}') == 1, "collector up")

    # Worker b (the only one on "reports") killed: it no longer answers, and is gone.
    gone = series("apphealth_queue_workers", target="broker", queue="reports")
    seconds = harness.measure_worker_exit(
        sc, lambda: sc.kill(worker_b), gone, 1, 15,
        framework_view=lambda: sum(1 for qs in (inspect.active_queues() or {}).values()
                                   if any(q["name"] == "reports" for q in qs)))
    sc.log("liveness: celery worker gone from apphealth_queue_workers %.1f s after SIGKILL" % seconds)
    left = sc.exporter.metrics()
    sc.check(left.get(series("apphealth_queue_workers", target="broker", queue="emails")) == 1,
             "the other worker still counted on emails")
    sc.check(left.get(jobs("broker", "reports", "reserved"), 0) >= 1,
             "the killed worker's prefetched task stays reserved (kombu redelivers it after visibility_timeout)")
    # The exporter binds its reply queue for the length of each question (at most half the
    # timeout), so a look at one instant may fall inside one: poll for a moment between two.
    # A binding left behind stays, and fails this. (Bindings of the test's own `celery inspect`
    # are not the exporter's: only "apphealth-..." ones count.)
    def exporter_bindings():
        return [m for m in redis.cli("SMEMBERS", "_kombu.binding.reply.celery.pidbox").splitlines()
                if "apphealth-" in m]
    try:
        harness.wait_until("no reply binding of the exporter between two questions",
                           lambda: not exporter_bindings(), 20, interval=0.1)
        unbound = True
    except TimeoutError:
        unbound = False
    sc.check(unbound, "the exporter's reply binding is removed after each question")
    sc.exporter.verify_clean_exit()


if __name__ == "__main__":
    harness.run("celery", body)
