#pragma once
// What becomes of a `sql_metrics` query's rows, the same for every database kind: the checks
// of a custom metric's rows and its export, and the export of the queue presets' rows into
// apphealth_queue_* series. They work on plain text values, so they are testable without a
// server.

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/SqlMetricsConfig.h"
#include "metrics/SnapshotBuilder.h"

namespace apphealth {

// A query result as plain text values (nullopt: SQL NULL).
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

// Custom metric: checks every row before it writes any (a bad row publishes nothing) and
// writes the family into `out` with target="<dbTarget>". Throws SqlMetricError.
void exportCustomRows(const SqlMetricSpec& spec, const std::string& dbTarget, const SqlRows& rows,
                      SnapshotBuilder& out);

// Queue presets: the rows of the preset's query (see SqlMetricQueries.h for their columns) as
// apphealth_queue_jobs{target,queue,state} and apphealth_queue_oldest_job_age_seconds, with
// every configured queue (and every state the preset knows) exported, 0 when empty.
void exportQueueRows(const SqlMetricSpec& spec, const std::string& dbTarget, const SqlRows& rows,
                     const std::string& helpSuffix, SnapshotBuilder& out);

}  // namespace apphealth
