"""What each alert rule fires on, in words, for the README table (keyed by alert name and
severity, or by name, severity and `signal` where one alert has rules for several signals).
The backtest fails when an alert of rules/*.yml has no entry here: a new alert needs its
sentence, and, if it pages, an incident scenario in scenarios/."""

FIRES_WHEN = {
    ("ApphealthExporterDown", "critical"): "Prometheus cannot scrape the exporter for 1 min",
    ("ApphealthAlertingComponentDown", "warning"): "Prometheus cannot scrape a Prometheus or an Alertmanager for 5 min",
    ("ApphealthAlertmanagerClusterSplit", "warning"): "an Alertmanager sees fewer cluster members than there are Alertmanagers up, for 5 min",
    ("ApphealthNotificationsFailing", "warning"): "more than 1 % of an Alertmanager's notifications through one integration fail over 10 min, for 10 min",
    ("ApphealthCollectorFailing", "warning"): "a collector reports failure for 10 min",
    ("ApphealthCollectorStale", "warning"): "a collector's last success is older than 15 min",
    ("ApphealthDatabaseDown", "critical"): "the database probe query fails for 1 min",
    ("ApphealthDatabaseSlow", "warning"): "probe p95 over 5 min above the threshold (1 s) for 10 min",
    ("ApphealthDatabaseConnectionsHigh", "critical"): "connections above 95 % of max_connections for 5 min",
    ("ApphealthDatabaseConnectionsHigh", "warning"): "connections above 80 % of max_connections for 10 min",
    ("ApphealthDatabaseLongTransaction", "warning"): "a transaction (backup tools excluded) open for more than 1 h",
    ("ApphealthRedisDown", "critical"): "Redis PING fails for 1 min",
    ("ApphealthBackupTooOld", "critical"): "newest backup older than its max age (26 h) for 5 min, no backup being written",
    ("ApphealthBackupMissing", "critical"): "no backup file at all for 10 min",
    ("ApphealthBackupChecksumFailed", "warning"): "newest backup does not match its .sha256 (or has none) for 30 min, no backup being written",
    ("ApphealthBackupSizeDropped", "warning"): "newest backup under 50 % of the previous one for 1 h, no backup being written",
    ("ApphealthBackupIncomplete", "critical"): "newest finished backup fails its completeness check (killed dump, truncated stream, manifest mismatch) for 15 min",
    ("ApphealthBackupRetentionShort", "warning"): "fewer days / weeks / months with a backup (or backups) than the retention policy keeps, once the policy had time to fill or after a drop, for 1 h",
    ("ApphealthBackupRetentionExceeded", "warning"): "oldest backup older than retention.max_age, or more than max_count backups, for 1 h",
    ("ApphealthBackupOffsiteMissing", "warning"): "newest finished local backup has no off-site copy of the same name and size, longer than offsite_delay (2 h) after it was written, for 10 min",
    ("ApphealthWalArchivingFailing", "warning"): "archive_command failed after the last success and keeps failing (15 min), for 10 min",
    ("ApphealthWalArchiveBehindRpo", "critical"): "WAL waiting to be archived and the last archiving older than the RPO (15 min), for 5 min",
    ("ApphealthQueueBacklogHigh", "warning"): "waiting jobs above the queue's threshold for 15 min",
    ("ApphealthQueueGrowing", "warning"): "waiting jobs (>= 100) growing > 60/h for 1 h",
    ("ApphealthQueueFailedJobs", "warning"): "failed/dead jobs above the threshold (100) for 15 min",
    ("ApphealthQueueNoWorkers", "critical"): "waiting jobs and no live worker on the queue for 5 min",
    ("ApphealthQueueStalled", "critical", "throughput"): "jobs waited 15 min and the queue's own processed counter did not move, for 5 min",
    ("ApphealthQueueStalled", "critical", "age"): "oldest waiting job older than 1 h for 5 min (queues without a processed counter)",
    ("ApphealthQueueStalled", "critical", "activity"): "jobs waited 15 min and none ran at any sample, for 5 min (queues with neither counter nor age)",
    ("ApphealthQueueStalled", "warning"): "oldest waiting job older than 5 min and the queue not shrinking, for 2 min",
    ("ApphealthHTTPErrorRatioHigh", "critical"): "5xx share over 2 min above the threshold (5 %) for 3 min, >= 40 requests",
    ("ApphealthHTTPErrorRatioHigh", "warning"): "5xx share over 5 min above 2 % for 15 min, >= 100 requests",
    ("ApphealthHTTPLatencyHigh", "warning"): "p95 response time over 5 min above the threshold (2 s) for 10 min",
    ("ApphealthProbeFailing", "critical"): "the HTTP probe fails for 1 min",
    ("ApphealthTLSCertExpiringSoon", "warning"): "the served certificate expires in less than 14 days",
    ("ApphealthErrorBudgetBurn", "critical"): "error budget of the log's objective (default 99.9 %) burning 14.4x (1 h and 5 min) or 6x (6 h and 30 min), >= 20 failed requests",
    ("ApphealthErrorBudgetBurn", "warning"): "error budget burning 1x over 3 days and 6 h",
    ("ApphealthWebVitalPoor", "warning"): "LCP/INP/CLS p75 over 10 min poor for 10 min, >= 30 observations",
    ("ApphealthWebVitalNeedsImprovement", "info"): "LCP/INP/CLS p75 over 1 h between good and poor for 1 h",
    ("ApphealthWebVitalLCPRegression", "warning"): "LCP p75 over 1 h 20 % above the same hour last week",
    ("ApphealthClientErrorRateUp", "warning"): "client errors in two successive half hours > 1.5x and 3 sigma over the last day's rate, >= 10",
    ("ApphealthIngestSilent", "warning"): "no page views for an hour that had >= 20 yesterday",
}


def fires_when(name, severity, variant):
    """The sentence of one alert rule: by its `signal` label if it has one, else by severity."""
    return FIRES_WHEN.get((name, severity, variant.get("signal")), FIRES_WHEN.get((name, severity)))
