"""Celery app of the queue scenario: tasks that run long, fail, or retry an hour later."""
import os
import time

from celery import Celery

app = Celery("tasks", broker=os.environ["BROKER_URL"])
app.conf.worker_prefetch_multiplier = 1
app.conf.task_default_queue = "celery"
app.conf.worker_hijack_root_logger = False


@app.task
def sleepy(seconds):
    time.sleep(seconds)
    return seconds


@app.task
def quick():
    return 1


@app.task(bind=True, max_retries=5)
def flaky(self):
    raise self.retry(countdown=3600)


@app.task
def boom():
    raise ValueError("boom")
