"""Sidekiq 6.4 (Debian's ruby-sidekiq) against the exporter: waiting and active jobs per
queue, the shared retry, scheduled and dead sets, the processed/failed counters, live and
busy processes per queue and the queue latency, as Sidekiq's own API counts them; then a
process SIGKILLed (gone when its heartbeat key expires, as in Sidekiq's own ProcessSet)."""
import json
import os
import subprocess

import harness
from harness import jobs, series

QUEUES = ["default", "mailers", "reports"]
HERE = os.path.join(harness.HERE, "sidekiq")


def body(sc):
    redis = harness.Redis(sc)
    env = {"REDIS_URL": "redis://127.0.0.1:%d/0" % redis.port}

    def helper(*args):
        out = subprocess.run(["ruby", os.path.join(HERE, "helper.rb")] + list(args), capture_output=True, text=True,
                             env=dict(os.environ, **env), timeout=60, check=True)
        return out.stdout

    sc.exporter = harness.Exporter(sc, harness.exporter_config(
        "app", redis.port, "      - preset: sidekiq\n        queues: [%s]\n" % ", ".join(QUEUES)))
    sidekiq = ["sidekiq", "-r", os.path.join(HERE, "jobs.rb")]
    sc.spawn("sidekiq-default", sidekiq + ["-q", "default", "-c", "2"], env=env)
    mailers = sc.spawn("sidekiq-mailers", sidekiq + ["-q", "mailers", "-c", "1"], env=env)
    harness.wait_until("two Sidekiq processes beating",
                       lambda: len(json.loads(helper("counts"))["processes"]) == 2, 60, interval=1)

    helper("produce-done")
    harness.wait_until("retry and dead sets filled",
                       lambda: (lambda c: c["retry"] == 1 and c["dead"] == 1 and c["processed"] == 5)(
                           json.loads(helper("counts"))), 60, interval=1)
    helper("produce-rest")

    def counts():
        c = json.loads(helper("counts", *QUEUES))
        out = {}
        for q in QUEUES:
            out[jobs("app", q, "waiting")] = (c["queues"][q]["size"], 0)
            out[jobs("app", q, "active")] = (c["active"].get(q, 0), 0)
            out[series("apphealth_queue_oldest_job_age_seconds", target="app", queue=q)] = (c["queues"][q]["latency"], 3)
            serving = [p for p in c["processes"] if q in p["queues"] and not p["quiet"] in (True, "true")]
            out[series("apphealth_queue_workers", target="app", queue=q)] = (len(serving), 0)
            out[series("apphealth_queue_workers_busy", target="app", queue=q)] = (
                sum(1 for p in serving if int(p["busy"]) > 0), 0)
        out[jobs("app", "sidekiq", "retry")] = (c["retry"], 0)
        out[jobs("app", "sidekiq", "scheduled")] = (c["scheduled"], 0)
        out[jobs("app", "sidekiq", "dead")] = (c["dead"], 0)
        out[series("apphealth_queue_jobs_processed_total", target="app", queue="sidekiq")] = (c["processed"], 0)
        out[series("apphealth_queue_jobs_failed_total", target="app", queue="sidekiq")] = (c["failed"], 0)
        return out

    harness.wait_until("two long jobs running", lambda: json.loads(helper("counts"))["active"].get("default") == 2, 60)
    harness.agree(sc, "sidekiq", counts)

    gone = series("apphealth_queue_workers", target="app", queue="mailers")
    seconds = harness.measure_worker_exit(
        sc, lambda: sc.kill(mailers), gone, 1, 75,
        framework_view=lambda: sum(1 for p in json.loads(helper("counts"))["processes"] if "mailers" in p["queues"]))
    sc.log("liveness: sidekiq process gone from apphealth_queue_workers %.1f s after SIGKILL" % seconds)
    sc.exporter.verify_clean_exit()


if __name__ == "__main__":
    harness.run("sidekiq", body)
