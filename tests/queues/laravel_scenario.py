"""Laravel 8.83 (Debian's php-laravel-framework) with the Redis queue driver, a key prefix and
failed jobs in PostgreSQL against the exporter: waiting, delayed and active (reserved) jobs
as Laravel's RedisQueue holds them, checked against Laravel's own Queue::size() and against
the jobs the scenario made through Queue::push/later and the handler that is running; and
the failed jobs the worker logged, read by the SQL `laravel` preset with `jobs_table: ""`,
against Laravel's own failed-job provider."""
import json
import os
import subprocess

import harness
from harness import jobs, series

HERE = os.path.join(harness.HERE, "laravel")
QUEUES = ["default", "reports"]


def body(sc):
    redis = harness.Redis(sc)
    pg = harness.Postgres(sc)
    state = os.path.join(sc.dir, "state")
    os.makedirs(state)
    env = {"REDIS_PORT": str(redis.port), "PG_PORT": str(pg.port), "STATE_DIR": state}

    def php(*args):
        out = subprocess.run(["php", os.path.join(HERE, "queue.php")] + list(args), capture_output=True, text=True,
                             env=dict(os.environ, **env), timeout=60)
        if out.returncode != 0:
            raise RuntimeError("php queue.php %s: %s %s" % (" ".join(args), out.stdout, out.stderr))
        return out.stdout

    php("migrate")
    # The queue is in Redis; failed jobs only in the database's failed_jobs table.
    postgres = ("postgres:\n  - name: app-db\n    dsn: \"host=127.0.0.1 port=%d dbname=postgres user=postgres "
                "sslmode=disable\"\n    interval: 2s\n    timeout: 2s\n    sql_metrics:\n      - preset: laravel\n"
                "        jobs_table: \"\"\n        queues: [%s]\n" % (pg.port, ", ".join(QUEUES)))
    sc.exporter = harness.Exporter(sc, harness.exporter_config(
        "app", redis.port, "      - preset: laravel\n        prefix: myapp_database_\n        queues: [%s]\n"
        % ", ".join(QUEUES)) + postgres)
    sc.spawn("worker", ["php", os.path.join(HERE, "queue.php"), "work", "default"], env=env)

    php("produce-done")
    harness.wait_until("2 failed jobs in failed_jobs", lambda: json.loads(php("counts", "default"))["failed"] == 2
                       and json.loads(php("counts", "default"))["size"]["default"] == 0, 60, interval=1)
    php("produce-rest")
    harness.wait_until("the long job running", lambda: len(os.listdir(state)) == 1, 60, interval=0.5)

    # Laravel 8's RedisQueue counts only the sum (size = list + delayed + reserved); the
    # states are what the scenario made: 2 later() calls, 1 running handler, the rest pushed.
    def counts():
        c = json.loads(php("counts", *QUEUES))
        running = len(os.listdir(state))
        out = {
            jobs("app", "default", "delayed"): (2, 0),
            jobs("app", "default", "active"): (running, 0),
            jobs("app", "default", "waiting"): (c["size"]["default"] - 2 - running, 0),
            jobs("app", "reports", "waiting"): (c["size"]["reports"], 0),
            jobs("app", "reports", "delayed"): (0, 0),
            jobs("app", "reports", "active"): (0, 0),
        }
        for q in QUEUES:
            out[jobs("app-db", q, "failed")] = (c["failed_by_queue"].get(q, 0), 0)
        sc.laravel_sizes = c["size"]
        return out

    metrics = harness.agree(sc, "laravel", counts)
    for q in QUEUES:
        total = sum(metrics.get(jobs("app", q, s), 0) for s in ("waiting", "delayed", "active"))
        sc.check(total == sc.laravel_sizes[q], "laravel %s: waiting + delayed + active %g == Queue::size() %d"
                 % (q, total, sc.laravel_sizes[q]))
    sc.check(not any(k.startswith("apphealth_queue_jobs{target=\"app-db\"") and 'state="failed"' not in k
                     for k in metrics), "the database target exports only failed jobs (jobs_table: \"\")")
    sc.check(not any(k.startswith("apphealth_queue_workers") for k in metrics),
             "no worker series: Laravel's queue:work leaves no trace in Redis")
    sc.check(not any(k.startswith("apphealth_queue_oldest_job_age_seconds") for k in metrics),
             "no oldest-job age: Laravel 8 payloads carry no createdAt")
    sc.exporter.verify_clean_exit()


if __name__ == "__main__":
    harness.run("laravel", body)
