#pragma once
// Probes one PostgreSQL server: round trip of the probe query, connection counts by state
// against max_connections, the age of the oldest open transaction, and WAL archiving
// (pg_stat_archiver) with the standbys' replication lag (pg_stat_replication).

#include "clients/PgConnection.h"
#include "collectors/Sampler.h"
#include "collectors/sql/DbTargetMetrics.h"
#include "config/Config.h"

namespace apphealth {

class PostgresCollector : public Sampler {
 public:
  explicit PostgresCollector(PostgresTarget target);
  SampleResult sample(SnapshotBuilder& out, std::stop_token stop) override;

 private:
  SampleResult measure(SnapshotBuilder& out, const std::stop_token& stop);
  void connect(Deadline deadline, const std::stop_token& stop);
  void measureWalArchiving(SnapshotBuilder& out, Deadline deadline, const std::stop_token& stop);

  PostgresTarget target_;
  PgConnection connection_;
  std::string settingsQuery_;  // built once: the excluded applications are part of the text
  DbTargetMetrics metrics_;
  std::string helpSuffix_;
};

}  // namespace apphealth
