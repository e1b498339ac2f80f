"""A new hero image on /tutors/:id: LCP p75 on mobile about 5.3 s for 2 hours."""
from world import Effect, at

NAME = "LCP p75 5.3 s for 2 h"
START = at("Tue", "14:00:20")
END = START + 2 * 3600
# LCP is drawn lognormal with sigma 0.45: p75 = median * exp(0.674 * 0.45) = median * 1.355.
EFFECTS = [Effect("lcp_poor", START, END, route="/tutors/:id", device="mobile", median=5.3 / 1.355)]
EXPECT, SEVERITY = "ApphealthWebVitalPoor", "warning"
DETECT, RESET = 30 * 60, 600
