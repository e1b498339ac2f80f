"""One endpoint fails all day: 3.5 % of requests answer 5xx for 7 hours on a Monday, below the
5 % error-ratio page but burning the error budget several times too fast."""
from world import Effect, at

NAME = "3.5 % 5xx for 7 h"
START = at("Mon", "09:00:25")
END = START + 7 * 3600
EFFECTS = [Effect("http_5xx", START, END, share=0.035)]
EXPECT, SEVERITY = "ApphealthErrorBudgetBurn", "critical"
DETECT, RESET = None, 30 * 60  # within the 6x alert's short window
