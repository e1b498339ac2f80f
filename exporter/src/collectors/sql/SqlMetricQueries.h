#pragma once
// The SQL a `sql_metrics` entry sends, per database kind. Both dialects live here side by
// side, so a preset means the same (which rows are waiting, delayed, active) on PostgreSQL
// and on MySQL/MariaDB.
//
// Every query returns, as its last column, the number of rows before the max_rows cut.
// Presets' columns (read by exportQueueRows):
//   laravel: queue, waiting, delayed, active, failed, oldest waiting job's age in seconds
//   table:   queue, state, count, oldest row's age in seconds

#include <string>

#include "config/SqlMetricsConfig.h"

namespace apphealth {

enum class SqlDialect { Postgres, Mysql };

// The user's query wrapped to count its rows and cap them at max_rows, or the preset's query.
std::string buildSqlMetricQuery(const SqlMetricSpec& spec, SqlDialect dialect);

}  // namespace apphealth
