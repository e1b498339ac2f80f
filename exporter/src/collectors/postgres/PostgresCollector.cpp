#include "collectors/postgres/PostgresCollector.h"
#include "collectors/sql/KeptConnectionProbe.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

namespace apphealth {

namespace {

constexpr const char* kConnectionsQuery =
    "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
    "WHERE backend_type = 'client backend' GROUP BY 1";
std::string sqlLiteral(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// max_connections, and the age of the oldest open transaction of a client backend other than
// ours and those of the excluded applications (backup tools).
std::string settingsQuery(const std::vector<std::string>& excludedApplications) {
  std::string excluded;
  for (const auto& name : excludedApplications) excluded += (excluded.empty() ? "" : ", ") + sqlLiteral(name);
  return "SELECT current_setting('max_connections')::int, "
         "coalesce((SELECT extract(epoch FROM max(clock_timestamp() - xact_start)) FROM pg_stat_activity "
         "WHERE xact_start IS NOT NULL AND backend_type = 'client backend' AND pid <> pg_backend_pid()" +
         (excluded.empty() ? std::string() : " AND application_name NOT IN (" + excluded + ")") + "), 0)";
}

// pg_stat_activity states, as label values without spaces. The set is closed, so the label
// cannot grow: anything new lands in "other".
std::string stateLabel(const std::string& state) {
  static const std::map<std::string, std::string> known = {
      {"active", "active"},
      {"idle", "idle"},
      {"idle in transaction", "idle_in_transaction"},
      {"idle in transaction (aborted)", "idle_in_transaction_aborted"},
      {"fastpath function call", "fastpath_function_call"},
      {"disabled", "disabled"},
      {"unknown", "unknown"}};
  auto it = known.find(state);
  return it == known.end() ? "other" : it->second;
}

// WAL archiving. The LSN arithmetic is done here rather than in SQL (pg_lsn + numeric needs
// PostgreSQL 14). wal_segment_size is in bytes in pg_settings since PostgreSQL 11.
constexpr const char* kArchiverQuery =
    "SELECT current_setting('archive_mode'), a.archived_count, a.failed_count, "
    "extract(epoch FROM a.last_archived_time), extract(epoch FROM a.last_failed_time), a.last_archived_wal, "
    "CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END, "
    "(SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') "
    "FROM pg_stat_archiver a";
// At most 10 standbys, named by application_name (bounded label values).
constexpr const char* kReplicationQuery =
    "SELECT left(coalesce(nullif(application_name, ''), 'standby'), 64) AS name, "
    "coalesce(extract(epoch FROM replay_lag), 0), "
    "coalesce(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() "
    "ELSE pg_current_wal_lsn() END, replay_lsn), 0) "
    "FROM pg_stat_replication ORDER BY 1 LIMIT 10";

// "16/B374D848" -> 0x16B374D848.
std::optional<double> parseLsn(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  try {
    return static_cast<double>(std::stoull(text.substr(0, slash), nullptr, 16)) * 4294967296.0 +
           static_cast<double>(std::stoull(text.substr(slash + 1), nullptr, 16));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The LSN just past the end of a WAL segment file "TTTTTTTTXXXXXXXXYYYYYYYY" (timeline, high
// and low segment number); nullopt for .history/.partial and other names.
std::optional<double> segmentEndLsn(const std::string& walFile, double segmentSize) {
  if (walFile.size() < 24 || segmentSize <= 0) return std::nullopt;
  for (int i = 0; i < 24; ++i) {
    if (!std::isxdigit(static_cast<unsigned char>(walFile[i]))) return std::nullopt;
  }
  if (walFile.size() > 24 && walFile[24] != '.') return std::nullopt;
  const double high = static_cast<double>(std::stoull(walFile.substr(8, 8), nullptr, 16));
  const double low = static_cast<double>(std::stoull(walFile.substr(16, 8), nullptr, 16));
  if (walFile.size() > 24 && walFile.find(".backup") == std::string::npos) return std::nullopt;
  return high * 4294967296.0 + (low + 1) * segmentSize;
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

PostgresCollector::PostgresCollector(PostgresTarget target)
    : target_(std::move(target)),
      settingsQuery_(settingsQuery(target_.oldest_transaction_exclude_applications)),
      metrics_(target_.name, target_.interval, target_.probe_latency_threshold_seconds),
      helpSuffix_(" Sampled every " + formatDuration(target_.interval) + ".") {}

SampleResult PostgresCollector::sample(SnapshotBuilder& out, std::stop_token stop) {
  SampleResult result;
  try {
    result = measure(out, stop);
  } catch (const std::runtime_error& e) {  // PgError, an unreadable password file and the like
    result = SampleResult::failure(e.what());
  }
  metrics_.writeProbe(out, result.ok);
  out.gauge("apphealth_threshold_db_wal_rpo_seconds",
            "Configured recovery point objective: WAL written may wait at most this long to be archived.",
            {{"target", target_.name}}, target_.wal_rpo_threshold_seconds);
  result.checks.push_back(metrics_.latencyCheck(result.ok));
  return result;
}

void PostgresCollector::connect(Deadline deadline, const std::stop_token& stop) {
  PgConnectParams params;
  params.dsn = target_.dsn;
  params.password = readSecret(target_.password);  // per connect: a rotated file is picked up
  // The server cancels a slow statement a little before we would give up on it, so a probe
  // stuck on a lock ends with an error on a connection we keep, instead of a connection we
  // drop with its backend still waiting (statement_timeout still ends that one, later).
  params.statement_timeout = std::max<Duration>(target_.timeout * 4 / 5, Duration(1));
  const auto started = std::chrono::steady_clock::now();
  connection_.connect(params, deadline, stop);
  const double took = secondsSince(started);
  metrics_.connected(took);
  spdlog::info("postgres target {}: connected in {:.3f}s", target_.name, took);
}

SampleResult PostgresCollector::measure(SnapshotBuilder& out, const std::stop_token& stop) {
  const auto deadline = std::chrono::steady_clock::now() + target_.timeout;
  const bool reused = connection_.connected();
  if (!reused) connect(deadline, stop);

  metrics_.observeProbe(probeKeptConnection<PgTimeout, PgError>(
      connection_, reused, "postgres", target_.name, [&] { connect(deadline, stop); },
      [&] { connection_.query(target_.probe_query, deadline, stop); }));

  // The probe answered: the database is up even if the statistics below fail (for example
  // when the monitoring role may not read pg_stat_activity).
  try {
    const auto settings = connection_.query(settingsQuery_, deadline, stop);
    const auto connections = connection_.query(kConnectionsQuery, deadline, stop);
    std::map<std::string, double> byState;
    for (int row = 0; row < connections.rows(); ++row) {
      byState[stateLabel(connections.value(row, 0))] += std::stod(connections.value(row, 1));
    }
    metrics_.writeStatistics(out, std::stod(settings.value(0, 0)), std::stod(settings.value(0, 1)), std::move(byState));
  } catch (const PgError& e) {
    spdlog::warn("postgres target {}: statistics query failed: {}", target_.name, e.what());
    return SampleResult::success(std::string("statistics query failed: ") + e.what());
  }
  try {
    measureWalArchiving(out, deadline, stop);
  } catch (const PgError& e) {
    spdlog::warn("postgres target {}: WAL archiving query failed: {}", target_.name, e.what());
    return SampleResult::success(std::string("WAL archiving query failed: ") + e.what());
  }
  return SampleResult::success();
}

void PostgresCollector::measureWalArchiving(SnapshotBuilder& out, Deadline deadline, const std::stop_token& stop) {
  const Labels labels = {{"target", target_.name}};
  const auto standbys = connection_.query(kReplicationQuery, deadline, stop);
  std::set<std::string> seen;
  for (int row = 0; row < standbys.rows(); ++row) {
    if (!seen.insert(standbys.value(row, 0)).second) continue;  // two standbys with one name: the first
    const Labels standby = {{"target", target_.name}, {"standby", standbys.value(row, 0)}};
    out.gauge("apphealth_db_replication_lag_seconds", "Replay lag of a standby (pg_stat_replication.replay_lag; 0 when idle)." + helpSuffix_,
              standby, std::stod(standbys.value(row, 1)));
    out.gauge("apphealth_db_replication_lag_bytes", "WAL the standby has not replayed yet." + helpSuffix_, standby,
              std::stod(standbys.value(row, 2)));
  }
  const auto a = connection_.query(kArchiverQuery, deadline, stop);
  if (a.rows() != 1) return;
  const std::string mode = a.value(0, 0);
  const bool archiving = mode == "on" || mode == "always";
  out.gauge("apphealth_db_wal_archive_mode", "Whether archive_mode is on or always (1) or off (0)." + helpSuffix_,
            labels, archiving ? 1 : 0);
  if (!archiving) return;
  out.counter("apphealth_db_wal_archived_total", "WAL files archived since the statistics were reset (pg_stat_archiver)." + helpSuffix_,
              labels, std::stod(a.value(0, 1)));
  out.counter("apphealth_db_wal_archive_failures_total",
              "Failed attempts to archive a WAL file since the statistics were reset (pg_stat_archiver)." + helpSuffix_,
              labels, std::stod(a.value(0, 2)));
  if (!a.isNull(0, 3)) {
    out.gauge("apphealth_db_wal_last_archived_timestamp_seconds", "Time of the last successful WAL archiving." + helpSuffix_,
              labels, std::stod(a.value(0, 3)));
  }
  if (!a.isNull(0, 4)) {
    out.gauge("apphealth_db_wal_last_archive_failure_timestamp_seconds", "Time of the last failed WAL archiving." + helpSuffix_,
              labels, std::stod(a.value(0, 4)));
  }
  // Bytes of WAL written after the last archived segment: nothing is at risk when it is 0 (an
  // idle database archives nothing and is fine).
  if (!a.isNull(0, 6)) {
    const auto current = parseLsn(a.value(0, 6));
    const double segment = a.isNull(0, 7) ? 0 : std::stod(a.value(0, 7));
    std::optional<double> archivedEnd = a.isNull(0, 5) ? std::optional<double>(0) : segmentEndLsn(a.value(0, 5), segment);
    if (current && archivedEnd) {
      out.gauge("apphealth_db_wal_unarchived_bytes",
                "WAL written after the end of the last archived segment: data lost if the server is lost now." + helpSuffix_,
                labels, std::max(0.0, *current - *archivedEnd));
    }
  }
}

}  // namespace apphealth
