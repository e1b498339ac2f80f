#pragma once
// Configuration of the browser beacon endpoints (Web Vitals and client errors).

#include <cstddef>
#include <string>
#include <vector>

#include "util/Duration.h"

namespace apphealth {

struct IngestConfig {
  bool enabled = false;  // true as soon as an `ingest:` section exists
  std::string vitals_path = "/ingest/vitals";
  std::string errors_path = "/ingest/errors";
  // The beacon endpoints' own listener, the one to publish: /metrics, /-/reload and the
  // landing page stay on --web.listen-address, and beacon traffic never delays a scrape.
  std::string listen_address = ":10046";
  // Opt-in: serve the beacon endpoints on --web.listen-address instead (CivetWeb, a worker
  // thread per connection: slow beacon clients can then delay scrapes; warned at startup).
  bool shared_listener = false;
  // Own listener: open beacon connections at most, more are refused at accept. Shared: worker
  // threads added to the main listener's 16 (one per open beacon connection).
  int max_connections = 1024;
  int max_connections_per_client = 16;  // own listener; trusted proxies are exempt
  // Own listener: a request (headers and body) must be complete within this long after its
  // connection was ready for it, or the connection is closed.
  Duration request_timeout = std::chrono::seconds(10);
  // Own listener: an exporter-toolkit web config file (TLS and headers; no basic auth, which
  // browsers cannot send), relative to the config file's directory. Empty: plain HTTP.
  std::string web_config_file;
  std::vector<std::string> allowed_origins;  // empty: no cross-origin beacons; "*": any origin
  std::vector<std::string> routes;           // "/tutors/:id", "/blog/*"; unmatched -> "other"
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_batch = 50;
  std::size_t max_routes = 100;  // label sets per family beyond which observations go to "other"
  double rate_per_second = 10;   // per client IP
  double burst = 40;
  std::vector<std::string> trusted_proxies;  // IPs or IPv4 CIDRs whose X-Forwarded-For is believed
  std::string error_log_file;                // optional JSON Lines file of sanitized reports
  std::size_t error_log_max_bytes = 10 * 1024 * 1024;
  int error_log_keep = 3;  // rotated files kept

  bool operator==(const IngestConfig&) const = default;
};

}  // namespace apphealth
