"""The Laravel app's `queue:work` processes crash on boot after a Wednesday deploy (a PHP
extension missing on the new release) and Supervisor gives up on them (FATAL) for 2 hours.
Before Laravel 12 the exporter sees no worker and no enqueue time, so only "jobs wait and none
is running" tells it: the `activity` signal. Mails keep arriving; nothing sends them."""
from world import Effect, at

NAME = "Laravel workers stopped for 2 h"
START = at("Wed", "10:20:30")
END = START + 2 * 3600
EFFECTS = [Effect("workers_gone", START, END, queues=["mail"])]
EXPECT, SEVERITY = "ApphealthQueueStalled", "critical"
# 15 minutes of waiting jobs with none running, then 5 minutes of `for`; it resolves at the
# first sample with a job running again.
DETECT, RESET = 30 * 60, 2 * 60
