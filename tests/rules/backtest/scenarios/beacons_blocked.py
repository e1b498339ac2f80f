"""A CDN change stops routing /ingest/ to the exporter: no beacon arrives for 3 hours."""
from world import Effect, at

NAME = "beacons blocked for 3 h"
START = at("Tue", "09:30:00")
END = START + 3 * 3600
EFFECTS = [Effect("beacons_blocked", START, END)]
EXPECT, SEVERITY = "ApphealthIngestSilent", "warning"
DETECT, RESET = None, None
