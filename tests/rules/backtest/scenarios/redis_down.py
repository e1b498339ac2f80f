"""Redis stops on a Wednesday morning for 15 minutes."""
from world import Effect, at

NAME = "Redis down for 15 min"
START = at("Wed", "10:41:50")
END = START + 15 * 60
EFFECTS = [Effect("redis_down", START, END)]
EXPECT, SEVERITY = "ApphealthRedisDown", "critical"
DETECT, RESET = 90, 600
