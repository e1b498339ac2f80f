"""A release leaks a database connection every 25 s (idle in transaction) until the app is
restarted 70 minutes later."""
from world import Effect, at

NAME = "connection leak for 70 min"
START = at("Mon", "14:10:00")
END = START + 70 * 60
EFFECTS = [Effect("db_conn_leak", START, END, seconds_per_conn=25)]
EXPECT, SEVERITY = "ApphealthDatabaseConnectionsHigh", "critical"
DETECT, RESET = None, 600
