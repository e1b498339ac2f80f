#include "collectors/postgres/PostgresCollector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

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

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

PostgresCollector::PostgresCollector(PostgresTarget target)
    : target_(std::move(target)),
      settingsQuery_(settingsQuery(target_.oldest_transaction_exclude_applications)),
      metrics_(target_.name, target_.interval, target_.probe_latency_threshold_seconds) {}

SampleResult PostgresCollector::sample(SnapshotBuilder& out, std::stop_token stop) {
  SampleResult result;
  try {
    result = measure(out, stop);
  } catch (const std::runtime_error& e) {  // PgError, an unreadable password file and the like
    result = SampleResult::failure(e.what());
  }
  metrics_.writeProbe(out, result.ok);
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

  auto probeStart = std::chrono::steady_clock::now();
  try {
    connection_.query(target_.probe_query, deadline, stop);
  } catch (const PgTimeout&) {
    throw;
  } catch (const PgError& e) {
    // A kept connection can die between samples (server restart, idle_session_timeout,
    // pg_terminate_backend, a NAT forgetting it): that says nothing about the database now.
    // Reconnect once within the same deadline rather than report a false "down".
    if (!reused || connection_.connected()) throw;
    spdlog::info("postgres target {}: kept connection lost ({}), reconnecting", target_.name, e.what());
    connect(deadline, stop);
    probeStart = std::chrono::steady_clock::now();
    connection_.query(target_.probe_query, deadline, stop);
  }
  metrics_.observeProbe(secondsSince(probeStart));

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
  return SampleResult::success();
}

}  // namespace apphealth
