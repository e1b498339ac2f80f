#include "collectors/postgres/SqlMetricsCollector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

namespace apphealth {

namespace {

constexpr const char* kTotalColumn = "apphealth_total_rows__";

std::string quoteIdentifier(const std::string& name) {
  // Names are validated by the config loader (letters, digits, '_', '$', '.'): no quotes inside.
  std::string out;
  std::size_t start = 0;
  while (true) {
    const auto dot = name.find('.', start);
    out += "\"" + name.substr(start, dot - start) + "\"";
    if (dot == std::string::npos) break;
    out += ".";
    start = dot + 1;
  }
  return out;
}

std::optional<double> parseNumber(const std::string& text) {
  if (text.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  // Out of double's range: PostgreSQL's numeric can exceed it; strtod gives +-HUGE_VAL.
  if (errno == ERANGE && std::isinf(v)) return std::nullopt;
  return v;
}

int columnIndex(const SqlRows& rows, const std::string& name) {
  for (std::size_t i = 0; i < rows.columns.size(); ++i) {
    if (rows.columns[i] == name) return static_cast<int>(i);
  }
  return -1;
}

std::string columnList(const SqlRows& rows) {
  std::string out;
  for (const auto& c : rows.columns) out += (out.empty() ? "" : ", ") + c;
  return out.empty() ? "none" : out;
}

std::string describe(const Labels& labels) {
  std::string out = "{";
  for (const auto& [k, v] : labels) out += (out.size() > 1 ? "," : "") + k + "=\"" + v + "\"";
  return out + "}";
}

double number(const std::optional<std::string>& cell) {
  if (!cell) return 0;
  return parseNumber(*cell).value_or(0);
}

}  // namespace

std::string truncateLabelValue(const std::string& value) {
  if (value.size() <= kSqlLabelValueMaxBytes) return value;
  std::size_t cut = kSqlLabelValueMaxBytes;
  // Back up over UTF-8 continuation bytes so no character is split.
  while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;
  return value.substr(0, cut);
}

void exportCustomRows(const SqlMetricSpec& spec, const std::string& pgTarget, const SqlRows& rows,
                      SnapshotBuilder& out) {
  const int valueColumn = columnIndex(rows, spec.value);
  if (valueColumn < 0) {
    throw SqlMetricError("value column '" + spec.value + "' is not in the result (columns: " + columnList(rows) + ")");
  }
  std::vector<int> labelColumns;
  for (const auto& label : spec.labels) {
    const int c = columnIndex(rows, label);
    if (c < 0) throw SqlMetricError("label column '" + label + "' is not in the result (columns: " + columnList(rows) + ")");
    labelColumns.push_back(c);
  }
  std::vector<std::pair<Labels, double>> samples;
  std::set<Labels> seen;
  for (std::size_t r = 0; r < rows.rows.size(); ++r) {
    const auto& row = rows.rows[r];
    Labels labels = {{"target", pgTarget}};
    for (std::size_t i = 0; i < labelColumns.size(); ++i) {
      const auto& cell = row[static_cast<std::size_t>(labelColumns[i])];
      labels.emplace_back(spec.labels[i], cell ? truncateLabelValue(*cell) : "");
    }
    const auto& cell = row[static_cast<std::size_t>(valueColumn)];
    if (!cell) {
      throw SqlMetricError("value column '" + spec.value + "' is NULL in row " + std::to_string(r + 1) + " " +
                           describe(labels) + " (use coalesce() if NULL means 0)");
    }
    const auto value = parseNumber(*cell);
    if (!value) {
      throw SqlMetricError("value column '" + spec.value + "' is not numeric in row " + std::to_string(r + 1) + " " +
                           describe(labels) + ": '" + truncateLabelValue(*cell) + "'");
    }
    if (!seen.insert(labels).second) {
      throw SqlMetricError("duplicate label set " + describe(labels) + " in row " + std::to_string(r + 1) +
                           " (label values are cut to " + std::to_string(kSqlLabelValueMaxBytes) +
                           " bytes; GROUP BY the label columns)");
    }
    samples.emplace_back(std::move(labels), *value);
  }
  for (const auto& [labels, value] : samples) {
    if (spec.counter) {
      out.counter(spec.name, spec.help, labels, value);
    } else {
      out.gauge(spec.name, spec.help, labels, value);
    }
  }
}

std::string buildSqlMetricQuery(const SqlMetricSpec& spec) {
  const std::string limit = " LIMIT " + std::to_string(spec.max_rows);
  switch (spec.kind) {
    case SqlMetricSpec::Kind::Custom:
      // The newline before ')' keeps a trailing "-- comment" from swallowing it. Wrapping also
      // rejects anything but a single SELECT (or VALUES/WITH ... SELECT).
      return std::string("SELECT *, count(*) OVER () AS ") + kTotalColumn + " FROM (\n" + spec.query +
             "\n) AS apphealth_sql_query" + limit;
    case SqlMetricSpec::Kind::Laravel: {
      const std::string ready = "reserved_at IS NULL AND available_at <= t.now";
      const std::string failed =
          spec.failed_jobs_table.empty()
              ? "SELECT NULL::text AS queue, 0::bigint AS failed WHERE false"
              : "SELECT queue::text AS queue, count(*) AS failed FROM " + quoteIdentifier(spec.failed_jobs_table) +
                    " GROUP BY 1";
      return "WITH t AS (SELECT extract(epoch FROM now()) AS now), "
             "j AS (SELECT queue::text AS queue, "
             "count(*) FILTER (WHERE " + ready + ") AS waiting, "
             "count(*) FILTER (WHERE reserved_at IS NULL AND available_at > t.now) AS delayed, "
             "count(*) FILTER (WHERE reserved_at IS NOT NULL) AS active, "
             "min(created_at) FILTER (WHERE " + ready + ") AS oldest "
             "FROM " + quoteIdentifier(spec.jobs_table) + ", t GROUP BY 1), "
             "f AS (" + failed + ") "
             "SELECT coalesce(j.queue, f.queue, '') AS queue, coalesce(j.waiting, 0), coalesce(j.delayed, 0), "
             "coalesce(j.active, 0), coalesce(f.failed, 0), "
             "coalesce(greatest(0, (SELECT now FROM t) - j.oldest), 0), count(*) OVER () "
             "FROM j FULL JOIN f ON j.queue = f.queue ORDER BY 1" + limit;
    }
    case SqlMetricSpec::Kind::Table: {
      const std::string created = quoteIdentifier(spec.created_at_column);
      const std::string age = spec.created_at_unix ? "extract(epoch FROM now()) - min(" + created + ")"
                                                   : "extract(epoch FROM now() - min(" + created + "))";
      const std::string queue = spec.queue_column.empty() ? "''::text" : "coalesce(" + quoteIdentifier(spec.queue_column) + "::text, '')";
      const std::string state = spec.state_column.empty() ? "''::text" : "coalesce(" + quoteIdentifier(spec.state_column) + "::text, '')";
      return "SELECT " + queue + " AS queue, " + state + " AS state, count(*), coalesce(greatest(0, " + age +
             "), 0), count(*) OVER () FROM " + quoteIdentifier(spec.table) +
             (spec.where.empty() ? "" : " WHERE (\n" + spec.where + "\n)") + " GROUP BY 1, 2 ORDER BY 1, 2" + limit;
    }
  }
  return "";
}

SqlMetricsCollector::SqlMetricsCollector(PostgresTarget target, SqlMetricSpec spec)
    : target_(std::move(target)),
      spec_(std::move(spec)),
      logName_(runnerTarget(target_, spec_)),
      sql_(buildSqlMetricQuery(spec_)),
      helpSuffix_(" Sampled every " + formatDuration(spec_.interval) + ".") {}

void SqlMetricsCollector::connect(Deadline deadline, const std::stop_token& stop) {
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
  spdlog::info("sql metric {}: connected", logName_);
}

Duration SqlMetricsCollector::baseStatementTimeout() const {
  return std::max<Duration>(spec_.timeout * 4 / 5, Duration(1));
}

void SqlMetricsCollector::fitStatementTimeout(Deadline deadline, const std::stop_token& stop) {
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

SqlRows SqlMetricsCollector::run(const std::stop_token& stop) {
  const auto deadline = std::chrono::steady_clock::now() + spec_.timeout;
  const bool reused = connection_.connected();
  if (!reused) connect(deadline, stop);
  std::optional<PgResult> result;
  try {
    fitStatementTimeout(deadline, stop);
    result.emplace(connection_.query(sql_, deadline, stop));
  } catch (const PgTimeout&) {
    throw;
  } catch (const PgError& e) {
    // A kept connection can die between samples; reconnect once rather than fail.
    if (!reused || connection_.connected()) throw;
    spdlog::info("sql metric {}: kept connection lost ({}), reconnecting", logName_, e.what());
    connect(deadline, stop);
    fitStatementTimeout(deadline, stop);
    result.emplace(connection_.query(sql_, deadline, stop));
  }
  SqlRows rows;
  const int columns = result->columns();
  // The last column is the row count before the LIMIT.
  for (int c = 0; c + 1 < columns; ++c) rows.columns.push_back(result->columnName(c));
  for (int r = 0; r < result->rows(); ++r) {
    auto& row = rows.rows.emplace_back();
    for (int c = 0; c + 1 < columns; ++c) {
      if (result->isNull(r, c)) row.emplace_back(std::nullopt);
      else row.emplace_back(result->value(r, c));
    }
    if (r == 0 && columns > 0) rows.total = std::atoll(result->value(0, columns - 1).c_str());
  }
  return rows;
}

void SqlMetricsCollector::exportQueues(const SqlRows& rows, SnapshotBuilder& out) const {
  std::map<std::pair<std::string, std::string>, double> jobs;
  std::map<std::string, double> ages;
  auto seed = [&](const std::string& queue) {
    if (spec_.kind == SqlMetricSpec::Kind::Laravel) {
      for (const char* state : {"waiting", "delayed", "active", "failed"}) jobs.try_emplace({queue, state}, 0);
    } else {
      jobs.try_emplace({queue, "waiting"}, 0);
    }
    ages.try_emplace(queue, 0);
  };
  for (const auto& queue : spec_.queues) seed(queue);
  // A table without queue_column is one queue: it stays exported (at 0) when it empties.
  if (spec_.kind == SqlMetricSpec::Kind::Table && spec_.queue_column.empty()) seed(spec_.queue);
  for (const auto& row : rows.rows) {
    if (spec_.kind == SqlMetricSpec::Kind::Laravel) {
      // queue, waiting, delayed, active, failed, oldest waiting age
      const std::string queue = truncateLabelValue(row[0].value_or(""));
      seed(queue);
      jobs[{queue, "waiting"}] += number(row[1]);
      jobs[{queue, "delayed"}] += number(row[2]);
      jobs[{queue, "active"}] += number(row[3]);
      jobs[{queue, "failed"}] += number(row[4]);
      ages[queue] = std::max(ages[queue], number(row[5]));
    } else {
      // queue, state, count, oldest age
      const std::string queue = spec_.queue_column.empty() ? spec_.queue : truncateLabelValue(row[0].value_or(""));
      std::string state = spec_.state_column.empty() ? "waiting" : truncateLabelValue(row[1].value_or(""));
      const bool waiting = spec_.state_column.empty() || state == spec_.waiting_state;
      if (waiting) state = "waiting";
      seed(queue);
      jobs[{queue, state}] += number(row[2]);
      if (waiting) ages[queue] = std::max(ages[queue], number(row[3]));
    }
  }
  for (const auto& [queueState, count] : jobs) {
    out.gauge("apphealth_queue_jobs", "Jobs in a queue by state." + helpSuffix_,
              {{"target", target_.name}, {"queue", queueState.first}, {"state", queueState.second}}, count);
  }
  for (const auto& [queue, age] : ages) {
    out.gauge("apphealth_queue_oldest_job_age_seconds", "Age of the oldest waiting job (0: queue empty)." + helpSuffix_,
              {{"target", target_.name}, {"queue", queue}}, age);
  }
}

SampleResult SqlMetricsCollector::sample(SnapshotBuilder& out, std::stop_token stop) {
  try {
    const SqlRows rows = run(stop);
    // exportCustomRows checks every row before it writes any: a failed query publishes nothing.
    if (spec_.kind == SqlMetricSpec::Kind::Custom) {
      exportCustomRows(spec_, target_.name, rows, out);
    } else {
      exportQueues(rows, out);
    }
    const long long dropped = std::max<long long>(0, rows.total - static_cast<long long>(rows.rows.size()));
    out.gauge("apphealth_sql_rows_dropped",
              "Rows (or queue groups, for presets) beyond max_rows that the last sample dropped.",
              {{"target", logName_}}, static_cast<double>(dropped));
    if (dropped > 0) {
      auto note = fmt::format("the query returned {} rows, more than max_rows ({}): {} rows dropped", rows.total,
                              spec_.max_rows, dropped);
      spdlog::warn("sql metric {}: {}", logName_, note);
      return SampleResult::success(std::move(note));
    }
    return SampleResult::success();
  } catch (const SqlMetricError& e) {
    return SampleResult::failure(std::string(e.what()) + "; nothing exported for this query");
  } catch (const PgError& e) {
    return SampleResult::failure(std::string("query failed: ") + e.what());
  } catch (const std::runtime_error& e) {  // unreadable password file and the like
    return SampleResult::failure(e.what());
  }
}

}  // namespace apphealth
