#pragma once
// Owns the running configuration, the collectors built from it and the HTTP server, and
// swaps collectors on reload without a gap in /metrics.

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "collectors/CollectorRunner.h"
#include "config/ConfigLoader.h"
#include "http/CivetWebListener.h"
#include "http/MicroHttpdListener.h"
#include "ingest/IngestEndpoints.h"
#include "status/StatusReport.h"
#include "web/WebGuard.h"

namespace apphealth {

struct ReloadResult {
  bool ok = false;
  std::string message;  // the config errors, one per line, when !ok
};

// How the main listener is protected (the command line's --web.* flags).
struct WebOptions {
  std::string configFile;       // --web.config.file: TLS, basic auth, headers; empty for none
  bool enableLifecycle = true;  // --web.enable-lifecycle: POST /-/reload
};

class Exporter {
 public:
  Exporter(std::string configFile, CivetWebOptions http, WebOptions web = {});
  ~Exporter();

  // Loads the config and starts serving. Throws std::runtime_error (bad config, port taken).
  void start();
  // SIGHUP: reloads now, or, when a reload is already running, has it run once more when it
  // ends (the file may have changed after it was read); nullopt then.
  std::optional<ReloadResult> reload();
  // POST /-/reload: reloads now, or returns nullopt at once when a reload is running.
  std::optional<ReloadResult> tryReload();
  void stop();

  int port() const { return server_ ? server_->port() : 0; }
  std::string renderMetrics() const;

  // Extra metric sources (e.g. ingest) can be plugged in by later components.
  static std::vector<std::unique_ptr<CollectorRunner>> buildRunners(const Config& config);

 private:
  void installRoutes();
  void startMainListener(const CivetWebOptions& options);
  std::shared_ptr<ingest::IngestEndpoints> ingest() const;
  HttpResponse handleMetrics(const HttpRequest& request) const;
  HttpResponse handleReload(const HttpRequest& request);
  ReloadResult reloadLocked();
  std::optional<ReloadResult> runRequestedReloads();
  StatusInputs statusInputs() const;

  const std::string configFile_;
  const CivetWebOptions httpOptions_;
  const WebOptions webOptions_;
  std::unique_ptr<WebGuard> mainGuard_;    // --web.config.file
  std::unique_ptr<WebGuard> beaconGuard_;  // ingest.web_config_file
  // CivetWeb, or libmicrohttpd when the web config sets TLS (see startMainListener).
  std::unique_ptr<HttpListener> server_;
  // server_ when it is libmicrohttpd (TLS), for its refusal counters; set once it serves.
  std::atomic<const MicroHttpdListener*> mainTlsListener_{nullptr};
  std::unique_ptr<MicroHttpdListener> beaconListener_;  // ingest on its own listener (the default)

  std::mutex reloadMutex_;  // one reload at a time (SIGHUP and /-/reload may race)
  std::atomic<bool> reloadRequested_{false};  // by SIGHUP, for whoever holds reloadMutex_
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
