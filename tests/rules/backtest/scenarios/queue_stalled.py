"""The queue workers hang (a deadlock in a job) on a Tuesday afternoon for 45 minutes: jobs
keep arriving, nothing is processed."""
from world import Effect, at

NAME = "workers stalled for 45 min"
START = at("Tue", "14:20:10")
END = START + 45 * 60
EFFECTS = [Effect("workers_stalled", START, END, queues=["default", "emails"])]
EXPECT, SEVERITY = "ApphealthQueueStalled", "warning"
DETECT, RESET = 10 * 60, 600
