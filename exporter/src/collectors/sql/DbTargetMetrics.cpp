#include "collectors/sql/DbTargetMetrics.h"

namespace apphealth {

namespace {

// Includes the 1 s default threshold, and enough resolution below it for p50/p95/p99.
const prometheus::Histogram::BucketBoundaries kProbeBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

}  // namespace

DbTargetMetrics::DbTargetMetrics(std::string target, Duration interval, double probeLatencyThresholdSeconds)
    : target_(std::move(target)),
      helpSuffix_(" Sampled every " + formatDuration(interval) + "."),
      threshold_(probeLatencyThresholdSeconds),
      probeDuration_(kProbeBuckets) {}

void DbTargetMetrics::writeProbe(SnapshotBuilder& out, bool up) const {
  const Labels labels = {{"target", target_}};
  out.gauge("apphealth_db_up", "Whether the database answered the probe query (1) or not (0)." + helpSuffix_,
            labels, up ? 1 : 0);
  out.histogram("apphealth_db_probe_duration_seconds",
                "Round trip of the probe query on an open connection." + helpSuffix_, labels, probeDuration_);
  out.gauge("apphealth_threshold_db_probe_latency_seconds",
            "Configured probe latency above which the database counts as slow.", labels, threshold_);
  if (lastConnectSeconds_ > 0) {
    out.gauge("apphealth_db_connect_duration_seconds", "How long the last (re)connect took." + helpSuffix_,
              labels, lastConnectSeconds_);
  }
}

void DbTargetMetrics::writeStatistics(SnapshotBuilder& out, double maxConnections, double oldestTransactionSeconds,
                                      std::map<std::string, double> connectionsByState) const {
  const Labels labels = {{"target", target_}};
  out.gauge("apphealth_db_max_connections", "The server's max_connections setting." + helpSuffix_, labels,
            maxConnections);
  out.gauge("apphealth_db_oldest_transaction_age_seconds",
            "Age of the oldest open transaction of a client session, backup sessions excluded (0: none)." + helpSuffix_, labels,
            oldestTransactionSeconds);
  for (const auto& state : {"active", "idle", "idle_in_transaction"}) connectionsByState.try_emplace(state, 0);
  for (const auto& [state, count] : connectionsByState) {
    out.gauge("apphealth_db_connections",
              "Client connections by state (PostgreSQL: pg_stat_activity; MySQL: the processlist)." + helpSuffix_,
              {{"target", target_}, {"state", state}}, count);
  }
}

StatusCheck DbTargetMetrics::latencyCheck(bool up) const {
  StatusCheck latency{"probe latency", kNoValue, threshold_, "s"};
  if (up) latency.value = lastProbeSeconds_;
  latency.failing = latency.value > latency.threshold;
  return latency;
}

}  // namespace apphealth
