"""The WAL archive bucket's credentials expire on a Wednesday morning: every archive_command
fails for two hours, until someone renews them; PostgreSQL then archives the backlog."""
from world import Effect, at

NAME = "WAL archiving broken for 2 h"
START = at("Wed", "09:12:40")
END = START + 2 * 3600
EFFECTS = [Effect("wal_archive_broken", START, END)]
EXPECT, SEVERITY = "ApphealthWalArchiveBehindRpo", "critical"
# The last segment archived before the failure is at most 5 min old (archive_timeout): the
# data at risk passes the 15-minute RPO 10-15 min in, then `for: 5m`.
DETECT, RESET = 21 * 60, 600
