// The `postgres:` section.

#include "config/LoadContext.h"
#include "config/SqlMetricsSection.h"

namespace apphealth {

namespace {

bool dsnUriHasPassword(const std::string& dsn) {
  const auto scheme = dsn.find("://");
  if (scheme == std::string::npos) return false;
  const auto at = dsn.find('@', scheme);
  if (at == std::string::npos) return false;
  return dsn.substr(scheme + 3, at - scheme - 3).find(':') != std::string::npos;
}

}  // namespace

std::optional<PostgresTarget> parsePostgresTarget(LoadContext& ctx, const YAML::Node& node) {
  YamlReader::Map map(ctx.reader(), node, "a postgres target");
  if (!map.valid()) return std::nullopt;
  PostgresTarget t;
  ctx.checkName(map, "postgres", t.name);
  map.getString("dsn", t.dsn);
  // Field form, for those who prefer it to a DSN.
  std::string fields;
  for (const char* key : {"host", "port", "dbname", "user", "sslmode"}) {
    std::string value;
    if (map.getString(key, value)) {
      if (!t.dsn.empty()) {
        ctx.reader().error(map.node(key), std::string("'") + key + "' cannot be combined with 'dsn'");
      }
      fields += std::string(fields.empty() ? "" : " ") + key + "='" + value + "'";
    }
  }
  if (t.dsn.empty()) t.dsn = fields;
  if (t.dsn.empty()) ctx.reader().error(node, "a postgres target needs 'dsn' or 'host'/'dbname'/'user'");
  if (t.dsn.find("password=") != std::string::npos || dsnUriHasPassword(t.dsn)) {
    ctx.reader().error(map.node("dsn"), "the dsn must not contain the password: use password_file or password_env");
  }
  ctx.secret(map, t.password);
  map.getString("probe_query", t.probe_query);
  ctx.intervalAndTimeout(map, t.interval, t.timeout);
  if (auto th = map.node("thresholds"); th.IsDefined()) {
    YamlReader::Map thresholds(ctx.reader(), th, "postgres thresholds");
    Duration latency{static_cast<long>(t.probe_latency_threshold_seconds * 1000)};
    if (thresholds.getDuration("probe_latency", latency, 1ms, 1h)) {
      t.probe_latency_threshold_seconds = toSeconds(latency);
    }
    Duration rpo{static_cast<long>(t.wal_rpo_threshold_seconds * 1000)};
    if (thresholds.getDuration("wal_rpo", rpo, 1s, 7 * 24h)) t.wal_rpo_threshold_seconds = toSeconds(rpo);
  }
  if (map.getStringList("oldest_transaction_exclude_applications", t.oldest_transaction_exclude_applications)) {
    auto list = map.node("oldest_transaction_exclude_applications");
    for (std::size_t i = 0; i < t.oldest_transaction_exclude_applications.size() && i < list.size(); ++i) {
      const auto& name = t.oldest_transaction_exclude_applications[i];
      // PostgreSQL keeps the first 63 bytes of application_name (NAMEDATALEN - 1).
      if (name.empty() || name.size() > 63 || name.find('\0') != std::string::npos) {
        ctx.reader().error(list[i], "an application_name has 1 to 63 bytes");
      }
    }
  }
  parseSqlMetrics(ctx, map, {"postgres", t.name, t.interval, t.timeout}, t.sql_metrics);
  return t;
}

}  // namespace apphealth
