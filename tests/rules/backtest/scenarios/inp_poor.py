"""A heavy third-party script on /: INP p75 on mobile about 800 ms for 2 hours."""
from world import Effect, at

NAME = "INP p75 800 ms for 2 h"
START = at("Thu", "10:15:00")
END = START + 2 * 3600
# INP is drawn lognormal with sigma 0.7: p75 = median * exp(0.674 * 0.7) = median * 1.60.
EFFECTS = [Effect("inp_poor", START, END, route="/", device="mobile", median=0.8 / 1.60)]
EXPECT, SEVERITY = "ApphealthWebVitalPoor", "warning"
DETECT, RESET = 30 * 60, 600
