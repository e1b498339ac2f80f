#pragma once
// Configuration of the browser beacon endpoints (Web Vitals and client errors).

#include <cstddef>
#include <string>
#include <vector>

namespace apphealth {

struct IngestConfig {
  bool enabled = false;  // true as soon as an `ingest:` section exists
  std::string vitals_path = "/ingest/vitals";
  std::string errors_path = "/ingest/errors";
  // Empty: the endpoints share --web.listen-address. Set (e.g. ":10046"): they get their own
  // listener and worker pool, so /metrics and /-/reload stay private and scrapes never queue
  // behind beacon connections.
  std::string listen_address;
  // Beacon connections served at once (CivetWeb holds a worker thread per open connection,
  // keep-alive included); more wait for a free worker.
  int max_connections = 64;
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
