#pragma once
// One entry under a postgres or mysql target's `sql_metrics:` (issues 4, 11): a metric defined
// by a SQL query, or a preset that reads a job queue kept in database tables into the same
// apphealth_queue_* series as the Redis queues. Filled in by SqlMetricsSection.cpp.

#include <string>
#include <vector>

#include "util/Duration.h"

namespace apphealth {

// Label values taken from rows are cut to this many bytes (at a UTF-8 character boundary),
// like the ingest endpoints do with client-supplied values.
inline constexpr std::size_t kSqlLabelValueMaxBytes = 128;
inline constexpr int kSqlDefaultMaxRows = 100;
inline constexpr int kSqlMaxMaxRows = 10000;
inline constexpr int kSqlMaxEntriesPerTarget = 32;  // each entry keeps its own connection
inline constexpr int kSqlMaxLabels = 10;

struct SqlMetricSpec {
  enum class Kind { Custom, Laravel, Table };
  Kind kind = Kind::Custom;
  // Custom: the metric name (apphealth_...). Presets: the entry's name (default: the preset
  // name). Unique per database target; the runner's target label is "<database target>/<name>".
  std::string name;
  Duration interval{0};  // defaults to the database target's
  Duration timeout{0};   // defaults to the database target's
  int max_rows = kSqlDefaultMaxRows;  // rows (custom) or queue/state groups (presets) kept

  // Custom metrics.
  std::string help;
  bool counter = false;              // type: counter (exported as returned) or gauge
  std::string query;                 // one SELECT, trailing ';' removed
  std::vector<std::string> labels;   // result columns used as labels, in this order
  std::string value;                 // result column holding the value

  // Presets: queue names always exported (zeros when empty), besides those found in the table.
  std::vector<std::string> queues;
  // preset: laravel.
  std::string jobs_table = "jobs";
  std::string failed_jobs_table = "failed_jobs";  // "" : the app keeps no failed_jobs table
  // preset: table.
  std::string table;
  std::string created_at_column = "created_at";
  bool created_at_unix = false;      // created_at holds unix seconds instead of a timestamp
  std::string queue_column;          // "" : every row belongs to queue `queue`
  std::string queue;                 // queue label without queue_column (default: name)
  std::string state_column;          // "" : every row is waiting
  std::string waiting_state = "waiting";  // with state_column: the value meaning "waiting"
  std::string where;                 // SQL condition rows must meet ("" : all rows)
};

}  // namespace apphealth
