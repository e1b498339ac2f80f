#pragma once
// The apphealth_db_* series every database target publishes, whatever its kind (PostgreSQL,
// MySQL/MariaDB): one place for their names, help texts, buckets and label sets, so that the
// rules and dashboards read every kind alike, by `target` only.

#include <prometheus/histogram.h>

#include <map>
#include <string>

#include "collectors/Sampler.h"
#include "metrics/SnapshotBuilder.h"
#include "util/Duration.h"

namespace apphealth {

class DbTargetMetrics {
 public:
  DbTargetMetrics(std::string target, Duration interval, double probeLatencyThresholdSeconds);

  void observeProbe(double seconds) {
    lastProbeSeconds_ = seconds;
    probeDuration_.Observe(seconds);
  }
  void connected(double seconds) { lastConnectSeconds_ = seconds; }

  // What stays meaningful when the target is down: apphealth_db_up, the probe histogram, the
  // latency threshold and the last connect's duration (once there was one).
  void writeProbe(SnapshotBuilder& out, bool up) const;
  // The server's statistics. `connectionsByState` uses the closed label set (active, idle,
  // idle_in_transaction, ..., other); the first three are always exported, 0 when absent.
  void writeStatistics(SnapshotBuilder& out, double maxConnections, double oldestTransactionSeconds,
                       std::map<std::string, double> connectionsByState) const;
  // The status page's "probe latency" check: this sample's probe round trip against the
  // threshold (no value when the probe did not answer).
  StatusCheck latencyCheck(bool up) const;

 private:
  std::string target_;
  std::string helpSuffix_;
  double threshold_;
  prometheus::Histogram probeDuration_;
  double lastConnectSeconds_ = 0;
  double lastProbeSeconds_ = 0;  // the probe round trip of the current sample
};

}  // namespace apphealth
