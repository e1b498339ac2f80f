#include "collectors/postgres/PostgresSqlMetricsCollector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>

namespace apphealth {

PostgresSqlMetricsCollector::PostgresSqlMetricsCollector(PostgresTarget target, SqlMetricSpec spec)
    : SqlMetricsSampler(target.name, std::move(spec), SqlDialect::Postgres), target_(std::move(target)) {}

void PostgresSqlMetricsCollector::connect(Deadline deadline, const std::stop_token& stop) {
  PgConnectParams params;
  params.dsn = target_.dsn;
  params.password = readSecret(target_.password);
  params.application_name = "apphealth_exporter_sql";
  // The server cancels the query a little before we would give up on it, so a slow query
  // ends with an error on a connection we keep (see PostgresCollector::connect).
  params.statement_timeout = baseStatementTimeout();
  connection_.connect(params, deadline, stop);
  statementTimeout_ = params.statement_timeout;
  // Metrics only read: a query that tries to write fails instead of changing the database.
  connection_.query("SET default_transaction_read_only = on; SET client_encoding = 'UTF8'", deadline, stop);
  spdlog::info("sql metric {}: connected", logName());
}

Duration PostgresSqlMetricsCollector::baseStatementTimeout() const {
  return std::max<Duration>(spec().timeout * 4 / 5, Duration(1));
}

void PostgresSqlMetricsCollector::fitStatementTimeout(Deadline deadline, const std::stop_token& stop) {
  // After a (re)connect in this sample less than the whole timeout is left: shorten the
  // server's statement_timeout to 4/5 of what is left, so the server still cancels a slow
  // query before we give up on it and drop the connection (whose backend would keep running
  // until its own statement_timeout). The next sample, with the whole timeout, restores it.
  const auto left = std::chrono::duration_cast<Duration>(deadline - std::chrono::steady_clock::now());
  const Duration wanted = std::clamp<Duration>(left * 4 / 5, Duration(1), baseStatementTimeout());
  if (wanted == statementTimeout_) return;
  connection_.query("SET statement_timeout = " + std::to_string(wanted.count()), deadline, stop);
  statementTimeout_ = wanted;
}

SqlRows PostgresSqlMetricsCollector::fetch(const std::stop_token& stop) {
  const auto deadline = std::chrono::steady_clock::now() + spec().timeout;
  const bool reused = connection_.connected();
  if (!reused) connect(deadline, stop);
  std::optional<PgResult> result;
  try {
    fitStatementTimeout(deadline, stop);
    result.emplace(connection_.query(sql(), deadline, stop));
  } catch (const PgTimeout&) {
    throw;
  } catch (const PgError& e) {
    // A kept connection can die between samples; reconnect once rather than fail.
    if (!reused || connection_.connected()) throw;
    spdlog::info("sql metric {}: kept connection lost ({}), reconnecting", logName(), e.what());
    connect(deadline, stop);
    fitStatementTimeout(deadline, stop);
    result.emplace(connection_.query(sql(), deadline, stop));
  }
  SqlRows rows;
  const int columns = result->columns();
  for (int c = 0; c < columns; ++c) rows.columns.push_back(result->columnName(c));
  for (int r = 0; r < result->rows(); ++r) {
    auto& row = rows.rows.emplace_back();
    for (int c = 0; c < columns; ++c) {
      if (result->isNull(r, c)) row.emplace_back(std::nullopt);
      else row.emplace_back(result->value(r, c));
    }
  }
  return rows;
}

}  // namespace apphealth
