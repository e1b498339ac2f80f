"""The queue workers are gone for two hours (Supervisor stopped after a deploy and the warning
went unanswered): the page comes once the oldest job has waited an hour."""
from world import Effect, at

NAME = "workers gone for 2 h"
START = at("Thu", "13:40:40")
END = START + 2 * 3600
EFFECTS = [Effect("workers_stalled", START, END, queues=["default", "emails"])]
EXPECT, SEVERITY = "ApphealthQueueStalled", "critical"
# END is when the workers are back; the page is about the oldest waiting job, which stays over
# an hour old until two hours of backlog are worked off (about 12 minutes here).
DETECT, RESET = 75 * 60, 15 * 60
