"""Every queue worker hangs on a job for two hours on a Thursday afternoon (a deadlock on a
database row, no job timeout): the workers are alive and busy and finish nothing, and the
warning went unanswered. The page comes from the best signal each queue has: `emails`' own
processed counter stops moving (about 20 minutes), `default`'s oldest job passes an hour."""
from world import Effect, at

NAME = "workers hung for 2 h"
START = at("Thu", "13:40:40")
END = START + 2 * 3600
EFFECTS = [Effect("workers_stalled", START, END, queues=["default", "emails"])]
EXPECT, SEVERITY = "ApphealthQueueStalled", "critical"
# The throughput page needs jobs waiting for 15 minutes without a finished one, then its 5
# minutes of `for`: the hang starts between two bursts of `emails`, so the 15 minutes start
# with the first mail of the trickle. END is when the workers are unstuck; the age page stays
# until two hours of backlog are worked off (about 12 minutes here), the throughput page
# resolves with the first finished job.
DETECT, RESET = 30 * 60, 15 * 60
