#pragma once
// A `sql_metrics:` entry of a postgres target (see collectors/sql/SqlMetricsSampler.h): runs
// the entry's query on its own kept-open libpq connection, read-only, with the server's
// statement_timeout a little below the entry's timeout.

#include "clients/PgConnection.h"
#include "collectors/sql/SqlMetricsSampler.h"
#include "config/Config.h"

namespace apphealth {

class PostgresSqlMetricsCollector : public SqlMetricsSampler {
 public:
  PostgresSqlMetricsCollector(PostgresTarget target, SqlMetricSpec spec);

 private:
  SqlRows fetch(const std::stop_token& stop) override;
  void connect(Deadline deadline, const std::stop_token& stop);
  Duration baseStatementTimeout() const;
  void fitStatementTimeout(Deadline deadline, const std::stop_token& stop);

  PostgresTarget target_;
  PgConnection connection_;
  Duration statementTimeout_{0};  // what the open connection's statement_timeout is set to
};

}  // namespace apphealth
