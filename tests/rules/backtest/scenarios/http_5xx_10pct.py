"""A bad deploy: 10 % of requests answer 5xx for 30 minutes, late on a Tuesday morning."""
from world import Effect, at

NAME = "10 % 5xx for 30 min"
START = at("Tue", "11:02:35")
END = START + 30 * 60
EFFECTS = [Effect("http_5xx", START, END, share=0.10)]
EXPECT, SEVERITY = "ApphealthHTTPErrorRatioHigh", "critical"
DETECT, RESET = 300, 600
