#pragma once
// Probes one MySQL or MariaDB server with the same contract as a PostgreSQL target: round
// trip of the probe query on a kept-open connection, connections by state against
// max_connections, and the age of the oldest open InnoDB transaction.

#include "clients/MysqlConnection.h"
#include "collectors/Sampler.h"
#include "collectors/sql/DbTargetMetrics.h"
#include "config/MysqlConfig.h"

namespace apphealth {

class MysqlCollector : public Sampler {
 public:
  explicit MysqlCollector(MysqlTarget target);
  SampleResult sample(SnapshotBuilder& out, std::stop_token stop) override;

 private:
  SampleResult measure(SnapshotBuilder& out, const std::stop_token& stop);
  void connect(Deadline deadline, const std::stop_token& stop);

  MysqlTarget target_;
  MysqlConnection connection_;
  std::string settingsQuery_;  // built once: the excluded users are part of the text
  DbTargetMetrics metrics_;
};

}  // namespace apphealth
