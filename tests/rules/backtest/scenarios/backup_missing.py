"""The backup volume is not mounted after a reboot: no backup file at all for an hour."""
from world import Effect, at

NAME = "backup volume unmounted for 1 h"
START = at("Wed", "10:00:30")
END = START + 3600
EFFECTS = [Effect("backup_unmounted", START, END)]
EXPECT, SEVERITY = "ApphealthBackupMissing", "critical"
DETECT, RESET = 15 * 60, 600
