"""RQ 1.13 (Debian's python3-rq) against the exporter: waiting, active, completed, failed,
canceled, scheduled and deferred jobs, the oldest job's age, live and busy workers and their
processed/failed counts, as RQ's own Queue, registries and Worker API count them; then an
idle worker SIGKILLed (RQ's own API keeps listing it until its key expires)."""
import os
import sys
import time
from datetime import timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "rq"))
import harness  # noqa: E402
from harness import jobs, series  # noqa: E402

from redis import Redis  # noqa: E402
from rq import Queue, Worker  # noqa: E402
from rq.registry import (CanceledJobRegistry, DeferredJobRegistry, FailedJobRegistry,  # noqa: E402
                         FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry)

import jobs as tasks  # noqa: E402

QUEUES = ["default", "high", "low"]


def body(sc):
    redis = harness.Redis(sc)
    url = "redis://127.0.0.1:%d/0" % redis.port
    conn = Redis(port=redis.port)
    # "low" has no worker: its jobs wait from the start, so their age has grown by the end.
    for _ in range(2):
        Queue("low", connection=conn).enqueue(tasks.quick)
    sc.exporter = harness.Exporter(sc, harness.exporter_config(
        "jobs", redis.port, "      - preset: rq\n        queues: [%s]\n" % ", ".join(QUEUES)))
    rq = ["/usr/bin/python3", "-m", "rq.cli", "worker", "--url", url]
    env = {"PYTHONPATH": os.path.join(harness.HERE, "rq")}
    sc.spawn("worker-default", rq + ["--name", "w-default", "default"], env=env)
    worker_high = sc.spawn("worker-high", rq + ["--name", "w-high", "high"], env=env)
    harness.wait_until("two RQ workers registered", lambda: len(Worker.all(connection=conn)) == 2, 60)

    default = Queue("default", connection=conn)
    for _ in range(3):
        default.enqueue(tasks.quick, result_ttl=3600)
    for _ in range(2):
        default.enqueue(tasks.fail)
    harness.wait_until("5 jobs done", lambda: FinishedJobRegistry(queue=default).count == 3
                       and FailedJobRegistry(queue=default).count == 2, 60)
    running = default.enqueue(tasks.long, 600, job_timeout=900)
    harness.wait_until("the long job started", lambda: StartedJobRegistry(queue=default).count == 1, 60)
    for _ in range(4):
        default.enqueue(tasks.quick)
    default.enqueue(tasks.quick, depends_on=running)                      # deferred
    for _ in range(2):
        default.enqueue_in(timedelta(hours=1), tasks.quick)               # scheduled
    default.enqueue(tasks.quick).cancel()                                 # canceled

    def counts():
        out = {}
        for name in QUEUES:
            q = Queue(name, connection=conn)
            out[jobs("jobs", name, "waiting")] = (q.count, 0)
            for state, registry in (("active", StartedJobRegistry), ("completed", FinishedJobRegistry),
                                    ("failed", FailedJobRegistry), ("canceled", CanceledJobRegistry),
                                    ("scheduled", ScheduledJobRegistry), ("deferred", DeferredJobRegistry)):
                out[jobs("jobs", name, state)] = (registry(queue=q).count, 0)
            workers = Worker.all(queue=q)
            out[series("apphealth_queue_workers", target="jobs", queue=name)] = (len(workers), 0)
            out[series("apphealth_queue_workers_busy", target="jobs", queue=name)] = (
                sum(1 for w in workers if w.get_state() == "busy"), 0)
            for w in workers:
                w.refresh()
            out[series("apphealth_queue_jobs_processed_total", target="jobs", queue=name)] = (
                sum(w.successful_job_count + w.failed_job_count for w in workers), 0)
            out[series("apphealth_queue_jobs_failed_total", target="jobs", queue=name)] = (
                sum(w.failed_job_count for w in workers), 0)
            oldest = q.jobs[:1]
            age = time.time() - oldest[0].enqueued_at.replace(tzinfo=timezone.utc).timestamp() if oldest else 0
            out[series("apphealth_queue_oldest_job_age_seconds", target="jobs", queue=name)] = (age, 3)
        return out

    harness.agree(sc, "rq", counts)

    gone = series("apphealth_queue_workers", target="jobs", queue="high")
    seconds = harness.measure_worker_exit(sc, lambda: sc.kill(worker_high), gone, 1, 15,
                                          framework_view=lambda: len(Worker.all(queue=Queue("high", connection=conn))))
    sc.log("liveness: rq worker gone from apphealth_queue_workers %.1f s after SIGKILL" % seconds)
    sc.check(len(Worker.all(queue=Queue("high", connection=conn))) == 1,
             "RQ's own Worker.all still lists the killed worker (its key lives worker_ttl + 60 s)")
    sc.check(sc.exporter.metrics().get(series("apphealth_queue_workers", target="jobs", queue="default")) == 1,
             "the busy worker on default is still counted")
    sc.exporter.verify_clean_exit()


if __name__ == "__main__":
    harness.run("rq", body)
