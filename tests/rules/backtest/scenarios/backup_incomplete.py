"""The OOM killer kills Tuesday night's pg_dump at 40 % (a report query ran beside it): the
file stays, smaller and without its trailer; Wednesday night's dump is complete again."""
from world import Effect, World, at

_w = World(effects=[Effect("backup_killed", at("Tue", "00:00"), at("Tue", "23:59"))])
NAME = "nightly dump killed halfway"
START = _w.backup_run(8)[1]  # the killed dump stops writing
END = _w.backup_run(9)[1] + 300  # Wednesday's complete dump has settled
EFFECTS = [Effect("backup_killed", at("Tue", "00:00"), at("Tue", "23:59"))]
EXPECT, SEVERITY = "ApphealthBackupIncomplete", "critical"
# The file must first settle (settle_time 5 min) and be checked, then `for: 15m`.
DETECT, RESET = 25 * 60, 600
