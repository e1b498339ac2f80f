#include "collectors/mysql/MysqlCollector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "collectors/mysql/MysqlConnect.h"
#include "collectors/sql/KeptConnectionProbe.h"

namespace apphealth {

namespace {

// A string literal in either quoting mode of the server (with or without NO_BACKSLASH_ESCAPES
// the doubled quote works; a backslash is kept out of the way by hex).
std::string sqlLiteral(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out = "X'";
  for (unsigned char c : text) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out + "'";
}

// max_connections, and the age of the oldest InnoDB transaction of a connection other than
// ours and those of the excluded users (backup users).
std::string settingsQuery(const std::vector<std::string>& excludedUsers) {
  std::string excluded;
  for (const auto& user : excludedUsers) {
    excluded += (excluded.empty() ? "" : ", ") + std::string("CONVERT(") + sqlLiteral(user) + " USING utf8mb4)";
  }
  return "SELECT @@max_connections, coalesce((SELECT max(UNIX_TIMESTAMP(NOW(6)) - UNIX_TIMESTAMP(trx_started)) "
         "FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id <> CONNECTION_ID()" +
         (excluded.empty() ? std::string()
                           : " AND trx_mysql_thread_id NOT IN (SELECT ID FROM information_schema.PROCESSLIST "
                             "WHERE USER IN (" + excluded + "))") +
         "), 0)";
}

// Client connections by what they do, in the label values PostgreSQL targets use: a sleeping
// connection with an open InnoDB transaction is idle_in_transaction (it may hold locks and
// an old snapshot). Replication and server threads are not client connections.
constexpr const char* kConnectionsQuery =
    "SELECT CASE WHEN p.COMMAND = 'Sleep' AND t.trx_mysql_thread_id IS NOT NULL THEN 'idle_in_transaction' "
    "WHEN p.COMMAND = 'Sleep' THEN 'idle' WHEN p.COMMAND = 'Killed' THEN 'other' ELSE 'active' END, count(*) "
    "FROM information_schema.PROCESSLIST p LEFT JOIN "
    "(SELECT DISTINCT trx_mysql_thread_id FROM information_schema.INNODB_TRX) t ON t.trx_mysql_thread_id = p.ID "
    "WHERE p.COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID', 'Slave_IO', 'Slave_SQL', 'Slave_worker') "
    "GROUP BY 1";

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double number(const std::string& text) {
  try {
    return std::stod(text);
  } catch (const std::exception&) {
    throw MysqlError("unexpected value '" + text + "' in the statistics");
  }
}

}  // namespace

MysqlCollector::MysqlCollector(MysqlTarget target)
    : target_(std::move(target)),
      settingsQuery_(settingsQuery(target_.oldest_transaction_exclude_users)),
      metrics_(target_.name, target_.interval, target_.probe_latency_threshold_seconds) {}

SampleResult MysqlCollector::sample(SnapshotBuilder& out, std::stop_token stop) {
  SampleResult result;
  try {
    result = measure(out, stop);
  } catch (const std::runtime_error& e) {  // MysqlError, an unreadable password file and the like
    result = SampleResult::failure(e.what());
  }
  metrics_.writeProbe(out, result.ok);
  result.checks.push_back(metrics_.latencyCheck(result.ok));
  return result;
}

void MysqlCollector::connect(Deadline deadline, const std::stop_token& stop) {
  MysqlConnectParams params = mysqlConnectParams(target_);
  // The server ends a slow statement a little before we would give up on it, so a probe
  // stuck on a lock ends with an error on a connection we keep, instead of a connection we
  // drop with its server thread still waiting.
  params.statement_timeout = std::max<Duration>(target_.timeout * 4 / 5, Duration(1));
  const auto started = std::chrono::steady_clock::now();
  connection_.connect(params, deadline, stop);
  const double took = secondsSince(started);
  metrics_.connected(took);
  spdlog::info("mysql target {}: connected in {:.3f}s ({}{})", target_.name, took,
               connection_.mariadb() ? "MariaDB" : "MySQL", connection_.tls() ? ", TLS" : "");
}

SampleResult MysqlCollector::measure(SnapshotBuilder& out, const std::stop_token& stop) {
  const auto deadline = std::chrono::steady_clock::now() + target_.timeout;
  const bool reused = connection_.connected();
  if (!reused) connect(deadline, stop);

  metrics_.observeProbe(probeKeptConnection<MysqlTimeout, MysqlError>(
      connection_, reused, "mysql", target_.name, [&] { connect(deadline, stop); },
      [&] { connection_.query(target_.probe_query, deadline, stop); }));

  // The probe answered: the database is up even if the statistics below fail (for example
  // when the monitoring user lacks the PROCESS privilege that INNODB_TRX needs).
  try {
    const auto settings = connection_.query(settingsQuery_, deadline, stop);
    const auto connections = connection_.query(kConnectionsQuery, deadline, stop);
    if (settings.rows.empty()) throw MysqlError("the settings query returned no row");
    std::map<std::string, double> byState;
    for (std::size_t row = 0; row < connections.rows.size(); ++row) {
      byState[connections.value(row, 0)] += number(connections.value(row, 1));
    }
    metrics_.writeStatistics(out, number(settings.value(0, 0)), number(settings.value(0, 1)), std::move(byState));
  } catch (const MysqlError& e) {
    spdlog::warn("mysql target {}: statistics query failed: {}", target_.name, e.what());
    return SampleResult::success(std::string("statistics query failed: ") + e.what());
  }
  return SampleResult::success();
}

}  // namespace apphealth
