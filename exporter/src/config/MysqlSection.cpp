// The `mysql:` section.

#include <unistd.h>

#include <set>

#include "config/LoadContext.h"
#include "config/SqlMetricsSection.h"

namespace apphealth {

std::optional<MysqlTarget> parseMysqlTarget(LoadContext& ctx, const YAML::Node& node) {
  YamlReader::Map map(ctx.reader(), node, "a mysql target");
  if (!map.valid()) return std::nullopt;
  auto& r = ctx.reader();
  MysqlTarget t;
  ctx.checkName(map, "mysql", t.name);
  // PostgreSQL and MySQL targets both publish apphealth_db_*{target}: one name, one database.
  if (ctx.hasName("postgres", t.name)) {
    r.error(map.node("name"), "target name '" + t.name +
                                  "' is already used by a postgres target; both publish apphealth_db_*{target=\"" +
                                  t.name + "\"}, so database target names must be unique across postgres and mysql");
  }
  if (map.getString("host", t.host) && t.host.empty()) r.error(map.node("host"), "host must not be empty");
  map.getInt("port", t.port, 1, 65535);
  if (map.getString("socket", t.socket)) {
    if (t.socket.empty() || t.socket[0] != '/') {
      r.error(map.node("socket"), "socket must be an absolute path to the server's Unix socket");
    } else if (map.has("host") || map.has("port")) {
      r.error(map.node(map.has("host") ? "host" : "port"), "set either 'socket' or 'host'/'port', not both");
    }
  }
  map.getString("user", t.user, true);
  map.getString("database", t.database);
  ctx.secret(map, t.password);

  static const std::set<std::string> kSslModes = {"disabled", "preferred", "required", "verify_ca",
                                                  "verify_identity"};
  if (map.getString("ssl_mode", t.ssl_mode) && !kSslModes.count(t.ssl_mode)) {
    r.error(map.node("ssl_mode"), "ssl_mode must be disabled, preferred, required, verify_ca or verify_identity, got '" +
                                      t.ssl_mode + "'");
  }
  if (map.getString("ssl_ca", t.ssl_ca)) {
    if (t.ssl_mode == "disabled") {
      r.error(map.node("ssl_ca"), "ssl_ca has no use with ssl_mode: disabled");
    } else if (::access(t.ssl_ca.c_str(), R_OK) != 0) {
      r.error(map.node("ssl_ca"), "cannot read ssl_ca " + t.ssl_ca);
    }
  } else if (t.ssl_mode == "verify_ca") {
    r.error(map.node("ssl_mode"), "ssl_mode: verify_ca needs ssl_ca (the PEM file of the CA that signed the server's certificate)");
  }

  map.getString("probe_query", t.probe_query);
  if (t.probe_query.empty()) r.error(map.node("probe_query"), "probe_query must not be empty");
  ctx.intervalAndTimeout(map, t.interval, t.timeout);
  if (auto th = map.node("thresholds"); th.IsDefined()) {
    YamlReader::Map thresholds(r, th, "mysql thresholds");
    Duration latency{static_cast<long>(t.probe_latency_threshold_seconds * 1000)};
    if (thresholds.getDuration("probe_latency", latency, 1ms, 1h)) {
      t.probe_latency_threshold_seconds = toSeconds(latency);
    }
  }
  if (map.getStringList("oldest_transaction_exclude_users", t.oldest_transaction_exclude_users)) {
    auto list = map.node("oldest_transaction_exclude_users");
    for (std::size_t i = 0; i < t.oldest_transaction_exclude_users.size() && i < list.size(); ++i) {
      const auto& name = t.oldest_transaction_exclude_users[i];
      // MariaDB allows user names of up to 80 characters (MySQL 8: 32).
      if (name.empty() || name.size() > 80 || name.find('\0') != std::string::npos) {
        r.error(list[i], "a user name has 1 to 80 bytes");
      }
    }
  }
  parseSqlMetrics(ctx, map, {"mysql", t.name, t.interval, t.timeout}, t.sql_metrics);
  return t;
}

}  // namespace apphealth
