"""A front-end deploy breaks a component: client errors go from 0.5 % to 2 % of page views
for 3 hours."""
from world import Effect, at

NAME = "client errors 4x for 3 h"
START = at("Wed", "11:30:00")
END = START + 3 * 3600
EFFECTS = [Effect("client_errors", START, END, rate=0.02)]
EXPECT, SEVERITY = "ApphealthClientErrorRateUp", "warning"
DETECT, RESET = None, None
