"""The WAL archive destination is full on a Monday afternoon for 45 minutes: every
archive_command fails until old archives are pruned."""
from world import Effect, at

NAME = "WAL archiving failing for 45 min"
START = at("Mon", "16:21:10")
END = START + 45 * 60
EFFECTS = [Effect("wal_archive_broken", START, END)]
EXPECT, SEVERITY = "ApphealthWalArchivingFailing", "warning"
DETECT, RESET = 15 * 60, 600
