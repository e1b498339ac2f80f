"""The nightly backup does not run on Tuesday night (cron disabled by an upgrade): the newest
backup, Monday's, passes its 26 h max age on Tuesday morning; Wednesday night's backup ends it."""
from world import Effect, World, at

_w = World()
NAME = "nightly backup skipped"
START = _w.backup_run(7)[0] + 26 * 3600  # Monday's backup becomes older than its max age
END = _w.backup_run(9)[1] + 300  # Wednesday's dump has settled
EFFECTS = [Effect("backup_not_run", at("Tue", "00:00"), at("Tue", "23:59"))]
EXPECT, SEVERITY = "ApphealthBackupTooOld", "critical"
DETECT, RESET = 15 * 60, 600
