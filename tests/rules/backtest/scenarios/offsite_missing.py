"""The off-site upload of Tuesday night's dump fails (the bucket's access key was rotated, the
backup host not updated) until Wednesday 10:00; the hourly retry job uploads it after that."""
from world import Effect, World, at

_w = World()
NAME = "off-site upload failing for a night"
START = _w.backup_run(8)[1]  # Tuesday's dump is written; its upload fails
END = at("Wed", "10:00")
EFFECTS = [Effect("offsite_broken", START - 60, END)]
EXPECT, SEVERITY = "ApphealthBackupOffsiteMissing", "warning"
# offsite_delay (2 h) after the dump was written, the settle time, and `for: 10m`.
DETECT, RESET = 150 * 60, 75 * 60
