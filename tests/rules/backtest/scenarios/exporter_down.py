"""The exporter process dies on a Thursday afternoon and is restarted 20 minutes later: every
scrape fails, then every counter starts again from zero."""
from world import Effect, at

NAME = "exporter down for 20 min"
START = at("Thu", "16:12:05")
END = START + 20 * 60
EFFECTS = [Effect("exporter_down", START, END)]
EXPECT, SEVERITY = "ApphealthExporterDown", "critical"
DETECT, RESET = 90, 600
