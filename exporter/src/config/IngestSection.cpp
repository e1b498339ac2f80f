// The `ingest:` section.

#include <arpa/inet.h>

#include <filesystem>
#include <set>

#include "config/LoadContext.h"
#include "http/ListenAddress.h"
#include "routes/RoutePatterns.h"
#include "web/WebConfig.h"

namespace apphealth {

namespace {

// What ClientAddress can match: IPv4 addresses and CIDRs, IPv6 addresses (compared as text).
bool validProxy(const std::string& text) {
  const auto slash = text.find('/');
  const std::string ip = text.substr(0, slash);
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, ip.c_str(), &v4) != 1) return slash == std::string::npos && inet_pton(AF_INET6, ip.c_str(), &v6) == 1;
  if (slash == std::string::npos) return true;
  const std::string bits = text.substr(slash + 1);
  return !bits.empty() && bits.size() <= 2 && bits.find_first_not_of("0123456789") == std::string::npos &&
         std::stoi(bits) <= 32;
}

}  // namespace

std::optional<IngestConfig> parseIngest(LoadContext& ctx, const YAML::Node& node) {
  YamlReader::Map map(ctx.reader(), node, "the ingest section");
  if (!map.valid()) return std::nullopt;
  IngestConfig c;
  c.enabled = true;
  bool enabled = true;
  if (map.getBool("enabled", enabled)) c.enabled = enabled;
  for (auto [key, path] : {std::pair{"vitals_path", &c.vitals_path}, std::pair{"errors_path", &c.errors_path}}) {
    if (map.getString(key, *path) && (path->empty() || (*path)[0] != '/')) {
      ctx.reader().error(map.node(key), std::string(key) + " must start with '/'");
    }
  }
  map.getBool("shared_listener", c.shared_listener);
  if (map.getString("listen_address", c.listen_address)) {
    if (c.shared_listener) {
      ctx.reader().error(map.node("listen_address"),
                         "listen_address and shared_listener: true exclude each other (shared_listener serves the beacon "
                         "endpoints on --web.listen-address)");
    }
    try {
      toCivetListeningPort(c.listen_address);
    } catch (const std::invalid_argument& e) {
      ctx.reader().error(map.node("listen_address"), e.what());
    }
  }
  if (c.shared_listener) c.listen_address.clear();
  // Each open connection is a worker thread on the shared listener, a socket on the own one.
  if (!map.getInt("max_connections", c.max_connections, 1, c.shared_listener ? 1024 : 1000000)) {
    c.max_connections = c.shared_listener ? 64 : 1024;
  }
  map.getInt("max_connections_per_client", c.max_connections_per_client, 1, 1000000);
  map.getDuration("request_timeout", c.request_timeout, std::chrono::milliseconds(100), std::chrono::minutes(10));
  map.getStringList("allowed_origins", c.allowed_origins);
  map.getStringList("routes", c.routes);
  std::set<std::string> seen;
  for (std::size_t i = 0; i < c.routes.size(); ++i) {
    if (auto problem = RoutePatterns::check(c.routes[i])) {
      ctx.reader().error(map.node("routes")[i], "route pattern '" + c.routes[i] + "': " + *problem);
    } else if (!seen.insert(c.routes[i]).second) {
      ctx.reader().error(map.node("routes")[i], "duplicate route pattern '" + c.routes[i] + "'");
    }
  }
  if (c.routes.size() > RoutePatterns::kMaxPatterns) {
    ctx.reader().error(map.node("routes"), "at most " + std::to_string(RoutePatterns::kMaxPatterns) + " route patterns");
  }
  int value = 0;
  if (map.getInt("max_body_bytes", value, 256, 16 * 1024 * 1024)) c.max_body_bytes = static_cast<std::size_t>(value);
  if (map.getInt("max_batch", value, 1, 10000)) c.max_batch = static_cast<std::size_t>(value);
  if (map.getInt("max_routes", value, 1, 10000)) c.max_routes = static_cast<std::size_t>(value);
  map.getDouble("rate_per_second", c.rate_per_second, 0.01, 1e6);
  map.getDouble("burst", c.burst, 1, 1e6);
  map.getStringList("trusted_proxies", c.trusted_proxies);
  for (std::size_t i = 0; i < c.trusted_proxies.size(); ++i) {
    if (!validProxy(c.trusted_proxies[i])) {
      ctx.reader().error(map.node("trusted_proxies")[i], "'" + c.trusted_proxies[i] + "' is not an IP address or an IPv4 CIDR");
    }
  }
  if (c.vitals_path == c.errors_path) ctx.reader().error(map.self(), "vitals_path and errors_path must differ");
  if (map.getString("web_config_file", c.web_config_file)) {
    const auto at = map.node("web_config_file");
    if (c.shared_listener) {
      ctx.reader().error(at, "web_config_file needs the beacon endpoints' own listener; with shared_listener: true, "
                             "--web.config.file protects them with the rest of the main listener");
    } else if (c.web_config_file.empty()) {
      ctx.reader().error(at, "web_config_file must not be empty");
    } else {
      // Relative to the config file, as Prometheus resolves the files its own config names.
      if (c.web_config_file[0] != '/') {
        c.web_config_file = (std::filesystem::path(ctx.reader().file()).parent_path() / c.web_config_file).string();
      }
      // Each problem at this key, and where in the web config it is.
      for (const auto& e : loadWebConfigFile(c.web_config_file, WebConfigUse::BeaconListener).errors) {
        ctx.reader().error(at, e.format());
      }
    }
  }
  if (auto log = map.node("error_log"); log.IsDefined()) {
    YamlReader::Map logMap(ctx.reader(), log, "ingest error_log");
    logMap.getString("file", c.error_log_file, true);
    if (logMap.getInt("max_bytes", value, 4096, 1 << 30)) c.error_log_max_bytes = static_cast<std::size_t>(value);
    logMap.getInt("keep", c.error_log_keep, 1, 100);
  }
  return c;
}

}  // namespace apphealth
