#include "collectors/mysql/MysqlSqlMetricsCollector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "collectors/mysql/MysqlConnect.h"

namespace apphealth {

MysqlSqlMetricsCollector::MysqlSqlMetricsCollector(MysqlTarget target, SqlMetricSpec spec)
    : SqlMetricsSampler(target.name, std::move(spec), SqlDialect::Mysql), target_(std::move(target)) {}

void MysqlSqlMetricsCollector::connect(Deadline deadline, const std::stop_token& stop) {
  MysqlConnectParams params = mysqlConnectParams(target_);
  // Metrics only read: a query that tries to write fails instead of changing the database.
  params.read_only = true;
  // DATETIME columns carry no zone; Laravel, Rails and Django write them in UTC by default.
  params.utc = true;
  params.statement_timeout = std::max<Duration>(spec().timeout * 4 / 5, Duration(1));
  connection_.connect(params, deadline, stop);
  spdlog::info("sql metric {}: connected", logName());
}

void MysqlSqlMetricsCollector::fitStatementTimeout(Deadline deadline, const std::stop_token& stop) {
  // The server ends the query a little before we would give up on it (4/5 of the time left),
  // so a slow query ends with an error on a connection we keep (see PostgresSqlMetricsCollector).
  const auto left = std::chrono::duration_cast<Duration>(deadline - std::chrono::steady_clock::now());
  const Duration base = std::max<Duration>(spec().timeout * 4 / 5, Duration(1));
  connection_.setStatementTimeout(std::clamp<Duration>(left * 4 / 5, Duration(1), base), deadline, stop);
}

SqlRows MysqlSqlMetricsCollector::fetch(const std::stop_token& stop) {
  const auto deadline = std::chrono::steady_clock::now() + spec().timeout;
  const bool reused = connection_.connected();
  if (!reused) connect(deadline, stop);
  MysqlResult result;
  try {
    fitStatementTimeout(deadline, stop);
    result = connection_.query(sql(), deadline, stop);
  } catch (const MysqlTimeout&) {
    throw;
  } catch (const MysqlError& e) {
    // A kept connection can die between samples; reconnect once rather than fail.
    if (!reused || connection_.connected()) throw;
    spdlog::info("sql metric {}: kept connection lost ({}), reconnecting", logName(), e.what());
    connect(deadline, stop);
    fitStatementTimeout(deadline, stop);
    result = connection_.query(sql(), deadline, stop);
  }
  SqlRows rows;
  rows.columns = std::move(result.columns);
  rows.rows = std::move(result.rows);
  return rows;
}

}  // namespace apphealth
