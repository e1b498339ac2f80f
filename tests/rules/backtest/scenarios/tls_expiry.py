"""certbot's renewals have been failing: the served certificate comes within 14 days of its
expiry on Wednesday 09:00; it is renewed by hand on Wednesday 15:00."""
from world import DAY, Effect, at

NAME = "certificate 14 days before expiry"
START = at("Wed", "09:00:00")
END = at("Wed", "15:00:00")
EFFECTS = [Effect("certbot_broken", START - 3 * DAY, END, expiry=START + 14 * DAY)]
EXPECT, SEVERITY = "ApphealthTLSCertExpiringSoon", "warning"
DETECT, RESET = 15 * 60, 600
