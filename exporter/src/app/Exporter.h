#pragma once
// Owns the running configuration, the collectors built from it and the HTTP server, and
// swaps collectors on reload without a gap in /metrics.

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "collectors/CollectorRunner.h"
#include "config/ConfigLoader.h"
#include "http/HttpServer.h"
#include "ingest/IngestEndpoints.h"
#include "status/StatusReport.h"

namespace apphealth {

struct ReloadResult {
  bool ok = false;
  std::string message;  // the config errors, one per line, when !ok
};

class Exporter {
 public:
  Exporter(std::string configFile, HttpServerOptions http);
  ~Exporter();

  // Loads the config and starts serving. Throws std::runtime_error (bad config, port taken).
  void start();
  ReloadResult reload();
  void stop();

  int port() const { return server_ ? server_->port() : 0; }
  std::string renderMetrics() const;

  // Extra metric sources (e.g. ingest) can be plugged in by later components.
  static std::vector<std::unique_ptr<CollectorRunner>> buildRunners(const Config& config);

 private:
  void installRoutes();
  std::shared_ptr<ingest::IngestEndpoints> ingest() const;
  void handleMetrics(mg_connection* conn, const mg_request_info& request) const;
  void handleReload(mg_connection* conn, const mg_request_info& request);
  StatusInputs statusInputs() const;

  const std::string configFile_;
  const HttpServerOptions httpOptions_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<HttpServer> ingestServer_;  // only with ingest.listen_address

  std::mutex reloadMutex_;  // one reload at a time (SIGHUP and /-/reload may race)
  mutable std::shared_mutex stateMutex_;
  std::shared_ptr<const Config> config_;
  std::vector<std::unique_ptr<CollectorRunner>> runners_;
  // Swapped on reload; each beacon request holds its own reference while it runs.
  std::shared_ptr<ingest::IngestEndpoints> ingest_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> lastReloadOk_{true};
  std::atomic<double> lastReloadSuccess_{0};
};

}  // namespace apphealth
