"""BullMQ 5 or 6 (npm, pinned in bullmq/package.json) against the exporter: waiting (with
prioritized), paused (5's paused list and 6's meta flag), active, delayed, failed,
completed and waiting-children jobs, the oldest waiting job over all priority levels,
workers from their named connections and the completed/failed metrics, as BullMQ's own
Queue API counts them; then the worker process SIGKILLed.

Usage: bullmq_scenario.py 5|6"""
import json
import os
import subprocess
import sys
import time

import harness
from harness import jobs, series

HERE = os.path.join(harness.HERE, "bullmq")
QUEUES = ["render", "thumbnails", "children"]


def scenario(version):
    def body(sc):
        redis = harness.Redis(sc)

        def helper(*args):
            out = subprocess.run(["node", os.path.join(HERE, "helper.mjs"), version, str(redis.port)] + list(args),
                                 capture_output=True, text=True, timeout=60, cwd=HERE)
            if out.returncode != 0:
                raise RuntimeError("helper.mjs %s: %s" % (" ".join(args), out.stderr))
            return out.stdout

        sc.exporter = harness.Exporter(sc, harness.exporter_config(
            "bull", redis.port, "      - preset: bullmq\n        queues: [%s]\n" % ", ".join(QUEUES)))
        worker = sc.spawn("worker", ["node", os.path.join(HERE, "helper.mjs"), version, str(redis.port), "worker",
                                     "render", "render-1"], cwd=HERE)
        harness.wait_until("the BullMQ worker connected",
                           lambda: json.loads(helper("counts", "render"))["render"]["workers"] == 1, 60, interval=1)
        helper("produce-done")
        harness.wait_until("3 completed, 2 failed", lambda: (lambda c: c["completed"] == 3 and c["failed"] == 2)(
            json.loads(helper("counts", "render"))["render"]["counts"]), 60, interval=1)
        helper("produce-rest")
        time.sleep(3)  # let the waiting jobs age a little

        def counts():
            c = json.loads(helper("counts", *QUEUES))
            now = time.time()
            out = {}
            for q in QUEUES:
                n = c[q]["counts"]
                waiting = n.get("waiting", 0) + n.get("paused", 0) + n.get("prioritized", 0)
                out[jobs("bull", q, "waiting")] = (0 if c[q]["paused"] else n.get("waiting", 0) + n.get("prioritized", 0), 0)
                out[jobs("bull", q, "paused")] = (waiting if c[q]["paused"] else n.get("paused", 0), 0)
                for state, key in (("active", "active"), ("delayed", "delayed"), ("failed", "failed"),
                                   ("completed", "completed"), ("waiting_children", "waiting-children")):
                    out[jobs("bull", q, state)] = (n.get(key, 0), 0)
                out[series("apphealth_queue_workers", target="bull", queue=q)] = (c[q]["workers"], 0)
                oldest = c[q]["oldest"]
                out[series("apphealth_queue_oldest_job_age_seconds", target="bull", queue=q)] = (
                    now - oldest / 1000 if oldest else 0, 3)
                if c[q]["completed"] or c[q]["failed"]:
                    out[series("apphealth_queue_jobs_processed_total", target="bull", queue=q)] = (
                        c[q]["completed"] + c[q]["failed"], 0)
                    out[series("apphealth_queue_jobs_failed_total", target="bull", queue=q)] = (c[q]["failed"], 0)
            return out

        metrics = harness.agree(sc, "bullmq%s" % version, counts)
        sc.check(not any(k.startswith("apphealth_queue_workers_busy") for k in metrics),
                 "no busy-worker series: BullMQ does not record which worker is busy")
        sc.check(metrics.get(jobs("bull", "thumbnails", "paused"), 0) == 4, "the paused queue's 4 jobs are paused")

        gone = series("apphealth_queue_workers", target="bull", queue="render")
        seconds = harness.measure_worker_exit(
            sc, lambda: sc.kill(worker), gone, 1, 15,
            framework_view=lambda: json.loads(helper("counts", "render"))["render"]["workers"])
        sc.log("liveness: bullmq %s worker gone from apphealth_queue_workers %.1f s after SIGKILL" % (version, seconds))
        sc.exporter.verify_clean_exit()
    return body


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("5", "6"):
        sys.exit(__doc__)
    harness.run("bullmq" + sys.argv[1], scenario(sys.argv[1]))
