#pragma once
// One `sql_metrics:` entry of a postgres target, run as its own collector ("sql", target
// "<postgres target>/<entry name>"): its own thread, kept-open connection, interval, timeout
// and backoff, so a slow or broken query never delays or fails another one, nor the
// target's probe. A query that fails (bad SQL, timeout, NULL or non-numeric value, duplicate
// label sets, missing column) publishes none of its series and apphealth_collector_up 0.

#include <optional>
#include <string>
#include <vector>

#include "clients/PgConnection.h"
#include "collectors/Sampler.h"
#include "config/Config.h"

namespace apphealth {

// A query result as plain text values (nullopt: SQL NULL), so the checks below are testable
// without a server.
struct SqlRows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  long long total = 0;  // rows the query produced before the max_rows cut
};

// Thrown by the evaluation when a result cannot be exported; the message is the log line.
class SqlMetricError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Cuts a label value to kSqlLabelValueMaxBytes without splitting a UTF-8 character.
std::string truncateLabelValue(const std::string& value);

// Custom metric: checks every row and writes the family into `out`. Throws SqlMetricError.
void exportCustomRows(const SqlMetricSpec& spec, const std::string& pgTarget, const SqlRows& rows,
                      SnapshotBuilder& out);

// The SQL actually sent: the user's query wrapped to count its rows and cap them at max_rows,
// or the preset's query.
std::string buildSqlMetricQuery(const SqlMetricSpec& spec);

class SqlMetricsCollector : public Sampler {
 public:
  SqlMetricsCollector(PostgresTarget target, SqlMetricSpec spec);
  SampleResult sample(SnapshotBuilder& out, std::stop_token stop) override;

  static std::string runnerTarget(const PostgresTarget& target, const SqlMetricSpec& spec) {
    return target.name + "/" + spec.name;
  }

 private:
  SqlRows run(const std::stop_token& stop);
  void connect(Deadline deadline, const std::stop_token& stop);
  void exportQueues(const SqlRows& rows, SnapshotBuilder& out) const;
  Duration baseStatementTimeout() const;
  void fitStatementTimeout(Deadline deadline, const std::stop_token& stop);

  PostgresTarget target_;
  SqlMetricSpec spec_;
  std::string logName_;  // "<target>/<name>"
  std::string sql_;
  std::string helpSuffix_;
  PgConnection connection_;
  Duration statementTimeout_{0};  // what the open connection's statement_timeout is set to
};

}  // namespace apphealth
