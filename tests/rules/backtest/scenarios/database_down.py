"""PostgreSQL stops (crash, full disk) on a Tuesday afternoon for 20 minutes."""
from world import Effect, at

NAME = "PostgreSQL down for 20 min"
START = at("Tue", "15:03:20")
END = START + 20 * 60
EFFECTS = [Effect("db_down", START, END)]
EXPECT, SEVERITY = "ApphealthDatabaseDown", "critical"
DETECT, RESET = 90, 600
