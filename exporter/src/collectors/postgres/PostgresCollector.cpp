#include "collectors/postgres/PostgresCollector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

namespace apphealth {

namespace {

// Includes the 1 s default threshold, and enough resolution below it for p50/p95/p99.
const prometheus::Histogram::BucketBoundaries kProbeBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

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
      probeDuration_(kProbeBuckets),
      settingsQuery_(settingsQuery(target_.oldest_transaction_exclude_applications)),
      helpSuffix_(" Sampled every " + formatDuration(target_.interval) + ".") {}

void PostgresCollector::writeStatic(SnapshotBuilder& out, bool up) {
  const Labels labels = {{"target", target_.name}};
  out.gauge("apphealth_db_up", "Whether the database answered the probe query (1) or not (0)." + helpSuffix_,
            labels, up ? 1 : 0);
  out.histogram("apphealth_db_probe_duration_seconds",
                "Round trip of the probe query on an open connection." + helpSuffix_, labels, probeDuration_);
  out.gauge("apphealth_threshold_db_probe_latency_seconds",
            "Configured probe latency above which the database counts as slow.", labels,
            target_.probe_latency_threshold_seconds);
  if (lastConnectSeconds_ > 0) {
    out.gauge("apphealth_db_connect_duration_seconds", "How long the last (re)connect took." + helpSuffix_,
              labels, lastConnectSeconds_);
  }
}

SampleResult PostgresCollector::sample(SnapshotBuilder& out, std::stop_token stop) {
  SampleResult result;
  try {
    result = measure(out, stop);
  } catch (const std::runtime_error& e) {  // PgError, an unreadable password file and the like
    result = SampleResult::failure(e.what());
  }
  writeStatic(out, result.ok);
  StatusCheck latency{"probe latency", kNoValue, target_.probe_latency_threshold_seconds, "s"};
  if (result.ok) latency.value = lastProbeSeconds_;
  latency.failing = latency.value > latency.threshold;
  result.checks.push_back(std::move(latency));
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
  lastConnectSeconds_ = secondsSince(started);
  spdlog::info("postgres target {}: connected in {:.3f}s", target_.name, lastConnectSeconds_);
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
  lastProbeSeconds_ = secondsSince(probeStart);
  probeDuration_.Observe(lastProbeSeconds_);

  // The probe answered: the database is up even if the statistics below fail (for example
  // when the monitoring role may not read pg_stat_activity).
  const Labels labels = {{"target", target_.name}};
  try {
    const auto settings = connection_.query(settingsQuery_, deadline, stop);
    out.gauge("apphealth_db_max_connections", "The server's max_connections setting." + helpSuffix_, labels,
              std::stod(settings.value(0, 0)));
    out.gauge("apphealth_db_oldest_transaction_age_seconds",
              "Age of the oldest open transaction of a client backend, backup tools excluded (0: none)." + helpSuffix_, labels,
              std::stod(settings.value(0, 1)));
    const auto connections = connection_.query(kConnectionsQuery, deadline, stop);
    std::map<std::string, double> byState;
    for (int row = 0; row < connections.rows(); ++row) {
      byState[stateLabel(connections.value(row, 0))] += std::stod(connections.value(row, 1));
    }
    for (const auto& state : {"active", "idle", "idle_in_transaction"}) byState.try_emplace(state, 0);
    for (const auto& [state, count] : byState) {
      out.gauge("apphealth_db_connections", "Client connections by state (pg_stat_activity)." + helpSuffix_,
                {{"target", target_.name}, {"state", state}}, count);
    }
  } catch (const PgError& e) {
    spdlog::warn("postgres target {}: statistics query failed: {}", target_.name, e.what());
    return SampleResult::success(std::string("statistics query failed: ") + e.what());
  }
  return SampleResult::success();
}

}  // namespace apphealth
