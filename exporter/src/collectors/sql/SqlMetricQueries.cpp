#include "collectors/sql/SqlMetricQueries.h"

namespace apphealth {

namespace {

constexpr const char* kTotalColumn = "apphealth_total_rows__";

// Names are validated by the config loader (letters, digits, '_', '$', '.'): no quotes inside.
std::string quoteIdentifier(const std::string& name, SqlDialect dialect) {
  const char* quote = dialect == SqlDialect::Postgres ? "\"" : "`";
  std::string out;
  std::size_t start = 0;
  while (true) {
    const auto dot = name.find('.', start);
    out += quote + name.substr(start, dot - start) + quote;
    if (dot == std::string::npos) break;
    out += ".";
    start = dot + 1;
  }
  return out;
}

std::string customQuery(const SqlMetricSpec& spec) {
  // The newline before ')' keeps a trailing "-- comment" from swallowing it. Wrapping also
  // rejects anything but a single SELECT (or VALUES/WITH ... SELECT). Same text for both.
  return std::string("SELECT *, count(*) OVER () AS ") + kTotalColumn + " FROM (\n" + spec.query +
         "\n) AS apphealth_sql_query LIMIT " + std::to_string(spec.max_rows);
}

// An app whose queue lives in Redis (jobs_table: "") keeps only failed_jobs in the database:
// the same columns as the full query, with the job states at 0 (not exported).
std::string laravelFailedOnly(const SqlMetricSpec& spec, SqlDialect dialect) {
  const bool pg = dialect == SqlDialect::Postgres;
  return std::string("SELECT ") + (pg ? "queue::text" : "CAST(queue AS CHAR)") +
         " AS queue, 0, 0, 0, count(*), 0, count(*) OVER () FROM " + quoteIdentifier(spec.failed_jobs_table, dialect) +
         " GROUP BY 1 ORDER BY 1 LIMIT " + std::to_string(spec.max_rows);
}

// Laravel's DatabaseQueue: a job is reserved (active) once reserved_at is set; unreserved
// jobs are waiting when available_at has come, delayed before. Times are unix seconds.
std::string laravelPostgres(const SqlMetricSpec& spec) {
  const std::string ready = "reserved_at IS NULL AND available_at <= t.now";
  const std::string failed =
      spec.failed_jobs_table.empty()
          ? "SELECT NULL::text AS queue, 0::bigint AS failed WHERE false"
          : "SELECT queue::text AS queue, count(*) AS failed FROM " +
                quoteIdentifier(spec.failed_jobs_table, SqlDialect::Postgres) + " GROUP BY 1";
  return "WITH t AS (SELECT extract(epoch FROM now()) AS now), "
         "j AS (SELECT queue::text AS queue, "
         "count(*) FILTER (WHERE " + ready + ") AS waiting, "
         "count(*) FILTER (WHERE reserved_at IS NULL AND available_at > t.now) AS delayed, "
         "count(*) FILTER (WHERE reserved_at IS NOT NULL) AS active, "
         "min(created_at) FILTER (WHERE " + ready + ") AS oldest "
         "FROM " + quoteIdentifier(spec.jobs_table, SqlDialect::Postgres) + ", t GROUP BY 1), "
         "f AS (" + failed + ") "
         "SELECT coalesce(j.queue, f.queue, '') AS queue, coalesce(j.waiting, 0), coalesce(j.delayed, 0), "
         "coalesce(j.active, 0), coalesce(f.failed, 0), "
         "coalesce(greatest(0, (SELECT now FROM t) - j.oldest), 0), count(*) OVER () "
         "FROM j FULL JOIN f ON j.queue = f.queue ORDER BY 1 LIMIT " + std::to_string(spec.max_rows);
}

// MySQL has no FULL JOIN: both tables' groups are stacked and summed per queue.
// UNIX_TIMESTAMP() is fixed for the whole statement. Laravel's times are INT UNSIGNED:
// differences are taken as SIGNED, so a job stamped by a clock a second ahead of the
// server's is not an "out of range" error.
std::string laravelMysql(const SqlMetricSpec& spec) {
  const std::string ready = "reserved_at IS NULL AND available_at <= UNIX_TIMESTAMP()";
  std::string groups =
      "SELECT CAST(queue AS CHAR) AS queue, "
      "sum(" + ready + ") AS n_waiting, "
      "sum(reserved_at IS NULL AND available_at > UNIX_TIMESTAMP()) AS n_delayed, "
      "sum(reserved_at IS NOT NULL) AS n_active, 0 AS n_failed, "
      "min(CASE WHEN " + ready + " THEN created_at END) AS oldest "
      "FROM " + quoteIdentifier(spec.jobs_table, SqlDialect::Mysql) + " GROUP BY 1";
  if (!spec.failed_jobs_table.empty()) {
    groups += " UNION ALL SELECT CAST(queue AS CHAR), 0, 0, 0, count(*), NULL FROM " +
              quoteIdentifier(spec.failed_jobs_table, SqlDialect::Mysql) + " GROUP BY 1";
  }
  return "SELECT coalesce(queue, '') AS queue, sum(n_waiting), sum(n_delayed), sum(n_active), sum(n_failed), "
         "coalesce(greatest(0, CAST(UNIX_TIMESTAMP() AS SIGNED) - CAST(min(oldest) AS SIGNED)), 0), count(*) OVER () "
         "FROM (" + groups + ") AS apphealth_laravel GROUP BY queue ORDER BY 1 LIMIT " +
         std::to_string(spec.max_rows);
}

std::string tablePreset(const SqlMetricSpec& spec, SqlDialect dialect) {
  const bool pg = dialect == SqlDialect::Postgres;
  const std::string created = quoteIdentifier(spec.created_at_column, dialect);
  std::string age;
  if (pg) {
    age = spec.created_at_unix ? "extract(epoch FROM now()) - min(" + created + ")"
                               : "extract(epoch FROM now() - min(" + created + "))";
  } else {
    // DATETIME columns are read in the session's time zone, which the MySQL collector sets to
    // UTC. Unix times may be UNSIGNED columns: subtracted as signed values.
    age = spec.created_at_unix ? "UNIX_TIMESTAMP(NOW(6)) - CAST(min(" + created + ") AS SIGNED)"
                               : "TIMESTAMPDIFF(MICROSECOND, min(" + created + "), NOW(6)) / 1e6";
  }
  auto text = [&](const std::string& column) {
    if (column.empty()) return std::string(pg ? "''::text" : "''");
    const std::string quoted = quoteIdentifier(column, dialect);
    return "coalesce(" + (pg ? quoted + "::text" : "CAST(" + quoted + " AS CHAR)") + ", '')";
  };
  return "SELECT " + text(spec.queue_column) + " AS queue, " + text(spec.state_column) +
         " AS state, count(*), coalesce(greatest(0, " + age + "), 0), count(*) OVER () FROM " +
         quoteIdentifier(spec.table, dialect) + (spec.where.empty() ? "" : " WHERE (\n" + spec.where + "\n)") +
         " GROUP BY 1, 2 ORDER BY 1, 2 LIMIT " + std::to_string(spec.max_rows);
}

}  // namespace

std::string buildSqlMetricQuery(const SqlMetricSpec& spec, SqlDialect dialect) {
  switch (spec.kind) {
    case SqlMetricSpec::Kind::Custom:
      return customQuery(spec);
    case SqlMetricSpec::Kind::Laravel:
      if (spec.jobs_table.empty()) return laravelFailedOnly(spec, dialect);
      return dialect == SqlDialect::Postgres ? laravelPostgres(spec) : laravelMysql(spec);
    case SqlMetricSpec::Kind::Table:
      return tablePreset(spec, dialect);
  }
  return "";
}

}  // namespace apphealth
