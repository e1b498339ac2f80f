#pragma once
// A `sql_metrics:` entry of a mysql target (see collectors/sql/SqlMetricsSampler.h): runs the
// entry's query on its own kept-open connection, in read-only transactions, with the
// session's time zone UTC and the server's statement time limit a little below the entry's
// timeout.

#include "clients/MysqlConnection.h"
#include "collectors/sql/SqlMetricsSampler.h"
#include "config/MysqlConfig.h"

namespace apphealth {

class MysqlSqlMetricsCollector : public SqlMetricsSampler {
 public:
  MysqlSqlMetricsCollector(MysqlTarget target, SqlMetricSpec spec);

 private:
  SqlRows fetch(const std::stop_token& stop) override;
  void connect(Deadline deadline, const std::stop_token& stop);
  void fitStatementTimeout(Deadline deadline, const std::stop_token& stop);

  MysqlTarget target_;
  MysqlConnection connection_;
};

}  // namespace apphealth
