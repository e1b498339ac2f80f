"""The site stops answering its health check (app server hung) for 15 minutes, Monday night."""
from world import Effect, at

NAME = "site probe failing for 15 min"
START = at("Mon", "23:17:50")
END = START + 15 * 60
EFFECTS = [Effect("site_down", START, END)]
EXPECT, SEVERITY = "ApphealthProbeFailing", "critical"
DETECT, RESET = 90, 600
