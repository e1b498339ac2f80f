#pragma once
// One `sql_metrics:` entry of a database target, run as its own collector ("sql", target
// "<database target>/<entry name>"): its own thread, kept-open connection, interval, timeout
// and backoff, so a slow or broken query never delays or fails another one, nor the
// target's probe. A query that fails (bad SQL, timeout, NULL or non-numeric value, duplicate
// label sets, missing column) publishes none of its series and apphealth_collector_up 0.
//
// This base does what is the same for every database kind (the SQL, the checks and export
// of the rows, the rows-dropped gauge, the failure reasons); a subclass per kind runs the
// query on its own client (e.g. PostgresSqlMetricsCollector).

#include <string>

#include "collectors/Sampler.h"
#include "collectors/sql/SqlMetricQueries.h"
#include "collectors/sql/SqlMetricRows.h"
#include "config/SqlMetricsConfig.h"

namespace apphealth {

class SqlMetricsSampler : public Sampler {
 public:
  SampleResult sample(SnapshotBuilder& out, std::stop_token stop) final;

  // The runner's target label: "<database target>/<entry name>".
  static std::string runnerTarget(const std::string& dbTarget, const SqlMetricSpec& spec) {
    return dbTarget + "/" + spec.name;
  }

 protected:
  SqlMetricsSampler(std::string dbTarget, SqlMetricSpec spec, SqlDialect dialect);

  // Runs sql() within spec().timeout and returns every column, the row count before the
  // max_rows cut last. Throws DbError when the connect or the statement fails or times out,
  // std::runtime_error for anything else (an unreadable password file).
  virtual SqlRows fetch(const std::stop_token& stop) = 0;

  const SqlMetricSpec& spec() const { return spec_; }
  const std::string& sql() const { return sql_; }
  const std::string& logName() const { return logName_; }  // "<target>/<name>"

 private:
  std::string dbTarget_;
  SqlMetricSpec spec_;
  std::string logName_;
  std::string sql_;
  std::string helpSuffix_;
};

}  // namespace apphealth
