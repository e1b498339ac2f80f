"""The app's upstream API fails on a Friday evening: 40 % of requests answer 5xx for 12
minutes, at a quieter hour than the Tuesday incident."""
from world import Effect, at

NAME = "40 % 5xx for 12 min, Friday evening"
START = at("Fri", "22:31:10")
END = START + 12 * 60
EFFECTS = [Effect("http_5xx", START, END, share=0.40)]
EXPECT, SEVERITY = "ApphealthHTTPErrorRatioHigh", "critical"
DETECT, RESET = 300, 600
