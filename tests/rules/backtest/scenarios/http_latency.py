"""The database gets slow under a bad query plan: responses take 12 times longer for 40
minutes (p95 about 4 s) on a Wednesday afternoon."""
from world import Effect, at

NAME = "responses 12x slower for 40 min"
START = at("Wed", "15:20:40")
END = START + 40 * 60
EFFECTS = [Effect("http_slow", START, END, factor=12)]
EXPECT, SEVERITY = "ApphealthHTTPLatencyHigh", "warning"
DETECT, RESET = 15 * 60, 600
