#pragma once
// Probes one PostgreSQL server: round trip of the probe query, connection counts by state
// against max_connections, and the age of the oldest open transaction.

#include <prometheus/histogram.h>

#include "clients/PgConnection.h"
#include "collectors/Sampler.h"
#include "config/Config.h"

namespace apphealth {

class PostgresCollector : public Sampler {
 public:
  explicit PostgresCollector(PostgresTarget target);
  SampleResult sample(SnapshotBuilder& out, std::stop_token stop) override;

 private:
  SampleResult measure(SnapshotBuilder& out, const std::stop_token& stop);
  void connect(Deadline deadline, const std::stop_token& stop);
  void writeStatic(SnapshotBuilder& out, bool up);

  PostgresTarget target_;
  PgConnection connection_;
  prometheus::Histogram probeDuration_;
  std::string settingsQuery_;  // built once: the excluded applications are part of the text
  double lastConnectSeconds_ = 0;
  double lastProbeSeconds_ = 0;  // the probe round trip of the current sample
  std::string helpSuffix_;
};

}  // namespace apphealth
