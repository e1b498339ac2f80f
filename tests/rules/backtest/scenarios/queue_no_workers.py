"""The queue workers are not running for 40 minutes on a Wednesday morning: a deploy stopped
them and Supervisor did not start them again (a bad program path in the new config). Jobs keep
arriving; nothing takes them."""
from world import Effect, at

NAME = "no live workers for 40 min"
START = at("Wed", "10:50:20")
END = START + 40 * 60
EFFECTS = [Effect("workers_gone", START, END, queues=["default", "emails"])]
EXPECT, SEVERITY = "ApphealthQueueNoWorkers", "critical"
# 5 minutes of `for` after the first sample without a worker; it resolves as soon as a
# worker is back.
DETECT, RESET = 6 * 60, 60
