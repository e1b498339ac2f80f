#include "app/Exporter.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>

#include "collectors/access_log/AccessLogCollector.h"
#include "collectors/backup/BackupCollector.h"
#include "collectors/http_probe/HttpProbeCollector.h"
#include "collectors/mysql/MysqlCollector.h"
#include "collectors/mysql/MysqlSqlMetricsCollector.h"
#include "collectors/postgres/PostgresCollector.h"
#include "collectors/postgres/PostgresSqlMetricsCollector.h"
#include "collectors/redis/RedisQueueCollector.h"
#include "metrics/Exposition.h"
#include "status/StatusReport.h"
#include "util/Gzip.h"

namespace apphealth {

namespace {

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// 405 unless the method is one of `allowed` ("GET" implies HEAD).
bool allowOnly(mg_connection* conn, const mg_request_info& request, const std::string& allowed) {
  const std::string method = request.request_method;
  if (allowed == "GET" && (method == "GET" || method == "HEAD")) return true;
  if (method == allowed) return true;
  const std::string allow = allowed == "GET" ? "GET, HEAD" : allowed;
  sendError(conn, 405, "method " + method + " not allowed; use " + allow, {{"Allow", allow}});
  return false;
}

}  // namespace

Exporter::Exporter(std::string configFile, HttpServerOptions http)
    : configFile_(std::move(configFile)), httpOptions_(std::move(http)) {}

Exporter::~Exporter() { stop(); }

std::vector<std::unique_ptr<CollectorRunner>> Exporter::buildRunners(const Config& config) {
  std::vector<std::unique_ptr<CollectorRunner>> runners;
  for (const auto& t : config.postgres) {
    runners.push_back(std::make_unique<CollectorRunner>("postgres", t.name, t.interval,
                                                        std::make_unique<PostgresCollector>(t)));
    for (const auto& m : t.sql_metrics) {
      runners.push_back(std::make_unique<CollectorRunner>("sql", SqlMetricsSampler::runnerTarget(t.name, m), m.interval,
                                                          std::make_unique<PostgresSqlMetricsCollector>(t, m)));
    }
  }
  for (const auto& t : config.mysql) {
    runners.push_back(std::make_unique<CollectorRunner>("mysql", t.name, t.interval, std::make_unique<MysqlCollector>(t)));
    for (const auto& m : t.sql_metrics) {
      runners.push_back(std::make_unique<CollectorRunner>("sql", SqlMetricsSampler::runnerTarget(t.name, m), m.interval,
                                                          std::make_unique<MysqlSqlMetricsCollector>(t, m)));
    }
  }
  for (const auto& t : config.redis) {
    runners.push_back(std::make_unique<CollectorRunner>("redis", t.name, t.interval,
                                                        std::make_unique<RedisQueueCollector>(t)));
  }
  for (const auto& t : config.backups) {
    runners.push_back(std::make_unique<CollectorRunner>("backup", t.name, t.interval,
                                                        std::make_unique<BackupCollector>(t)));
  }
  for (const auto& t : config.access_logs) {
    runners.push_back(std::make_unique<CollectorRunner>("access_log", t.name, t.interval,
                                                        std::make_unique<AccessLogCollector>(t)));
  }
  for (const auto& t : config.http_probes) {
    runners.push_back(std::make_unique<CollectorRunner>("http_probe", t.name, t.interval,
                                                        std::make_unique<HttpProbeCollector>(t)));
  }
  return runners;
}

void Exporter::start() {
  auto loaded = loadConfigFile(configFile_);
  if (!loaded.config) {
    std::string message = "invalid configuration:";
    for (const auto& e : loaded.errors) message += "\n  " + e.format();
    throw std::runtime_error(message);
  }
  config_ = std::make_shared<const Config>(std::move(*loaded.config));
  runners_ = buildRunners(*config_);
  for (auto& runner : runners_) runner->start();
  lastReloadSuccess_ = nowSeconds();

  const auto& ingestConfig = config_->ingest;
  if (ingestConfig.enabled) ingest_ = std::make_shared<ingest::IngestEndpoints>(ingestConfig);
  HttpServerOptions mainOptions = httpOptions_;
  // Every open connection holds a worker thread: beacons sharing the main listener get their
  // own share of workers on top of those kept for scrapes.
  if (ingest_ && ingestConfig.listen_address.empty()) mainOptions.threads += ingestConfig.max_connections;
  server_ = std::make_unique<HttpServer>(mainOptions);
  if (ingest_ && !ingestConfig.listen_address.empty()) {
    ingestServer_ = std::make_unique<HttpServer>(
        HttpServerOptions{ingestConfig.listen_address, ingestConfig.max_connections, httpOptions_.requestTimeoutMs});
  }
  installRoutes();
  ready_ = true;
  spdlog::info("apphealth_exporter {} listening on {} with {} collectors from {}{}", APPHEALTH_VERSION,
               httpOptions_.listenAddress, runners_.size(), configFile_,
               ingestServer_ ? "; beacon ingest on " + ingestConfig.listen_address : std::string());
}

ReloadResult Exporter::reload() {
  std::lock_guard reloadLock(reloadMutex_);
  auto loaded = loadConfigFile(configFile_);
  if (!loaded.config) {
    ReloadResult result;
    for (const auto& e : loaded.errors) result.message += e.format() + "\n";
    lastReloadOk_ = false;
    spdlog::error("reload failed, keeping the running configuration:\n{}", result.message);
    return result;
  }
  auto config = std::make_shared<const Config>(std::move(*loaded.config));
  const auto& oldIngest = config_->ingest;
  if (config->ingest.enabled != oldIngest.enabled || config->ingest.vitals_path != oldIngest.vitals_path ||
      config->ingest.errors_path != oldIngest.errors_path ||
      config->ingest.listen_address != oldIngest.listen_address ||
      config->ingest.max_connections != oldIngest.max_connections) {
    ReloadResult result;
    result.message = configFile_ +
                     ": enabling, disabling or moving the ingest endpoints (paths, listen_address, max_connections) "
                     "needs a restart\n";
    lastReloadOk_ = false;
    spdlog::error("reload failed, keeping the running configuration: {}", result.message);
    return result;
  }
  // Unchanged ingest settings keep their endpoints, and with them the histograms' history.
  std::shared_ptr<ingest::IngestEndpoints> ingest = this->ingest();
  if (config->ingest.enabled && !(config->ingest == oldIngest)) {
    ingest = std::make_shared<ingest::IngestEndpoints>(config->ingest);
  }
  auto fresh = buildRunners(*config);
  for (auto& runner : fresh) runner->start();
  std::vector<std::unique_ptr<CollectorRunner>> old;
  {
    std::unique_lock lock(stateMutex_);
    old.swap(runners_);
    runners_ = std::move(fresh);
    config_ = config;
    ingest_ = ingest;
  }
  old.clear();  // stops the old sampling threads, outside the lock
  lastReloadOk_ = true;
  lastReloadSuccess_ = nowSeconds();
  spdlog::info("configuration reloaded from {}", configFile_);
  return {true, "configuration reloaded"};
}

void Exporter::stop() {
  ready_ = false;
  // No more requests; both servers close their listeners in parallel to keep shutdown short.
  std::thread ingestCloser([this] { ingestServer_.reset(); });
  server_.reset();
  ingestCloser.join();
  std::vector<std::unique_ptr<CollectorRunner>> old;
  {
    std::unique_lock lock(stateMutex_);
    old.swap(runners_);
  }
  // Ask every runner to stop before waiting on any, so the shutdown costs one wait, not N.
  std::vector<std::thread> stoppers;
  for (auto& runner : old) stoppers.emplace_back([&runner] { runner->stop(); });
  for (auto& t : stoppers) t.join();
}

std::string Exporter::renderMetrics() const {
  // Hold the snapshots (not the lock) while joining: a reload may swap runners meanwhile.
  std::vector<std::shared_ptr<const RenderedFamilies>> snapshots;
  {
    std::shared_lock lock(stateMutex_);
    snapshots.reserve(runners_.size() + 1);
    for (const auto& runner : runners_) snapshots.push_back(runner->snapshot());
  }
  SnapshotBuilder self;
  self.gauge("apphealth_build_info", "Build of the exporter; the value is always 1.",
             {{"version", APPHEALTH_VERSION}, {"compiler", __VERSION__}}, 1);
  self.gauge("apphealth_config_last_reload_successful", "Whether the last configuration reload succeeded.", {},
             lastReloadOk_ ? 1 : 0);
  self.gauge("apphealth_config_last_reload_success_timestamp_seconds",
             "Unix time of the last successful configuration load.", {}, lastReloadSuccess_.load());
  if (auto endpoints = ingest()) endpoints->collect(self);
  snapshots.push_back(std::make_shared<const RenderedFamilies>(renderFamilies(self.take())));
  std::vector<const RenderedFamilies*> parts;
  for (const auto& s : snapshots) parts.push_back(s.get());
  return joinRendered(parts);
}

std::shared_ptr<ingest::IngestEndpoints> Exporter::ingest() const {
  std::shared_lock lock(stateMutex_);
  return ingest_;
}

void Exporter::installRoutes() {
  if (ingest_) {
    const auto& c = ingest_->config();
    HttpServer& server = ingestServer_ ? *ingestServer_ : *server_;
    server.route(c.vitals_path, [this](mg_connection* conn, const mg_request_info& r) { ingest()->handleVitals(conn, r); });
    server.route(c.errors_path, [this](mg_connection* conn, const mg_request_info& r) { ingest()->handleErrors(conn, r); });
  }
  server_->route("/metrics", [this](mg_connection* c, const mg_request_info& r) { handleMetrics(c, r); });
  server_->route("/-/healthy", [](mg_connection* c, const mg_request_info& r) {
    if (allowOnly(c, r, "GET")) sendResponse(c, {200, "text/plain; charset=utf-8", "Healthy\n", {}});
  });
  server_->route("/-/ready", [this](mg_connection* c, const mg_request_info& r) {
    if (!allowOnly(c, r, "GET")) return;
    if (ready_) sendResponse(c, {200, "text/plain; charset=utf-8", "Ready\n", {}});
    else sendError(c, 503, "not ready");
  });
  server_->route("/-/reload", [this](mg_connection* c, const mg_request_info& r) { handleReload(c, r); });
  server_->route("/", [this](mg_connection* c, const mg_request_info& r) {
    if (!allowOnly(c, r, "GET")) return;
    // Nothing on the page may run or load anything, whatever a target's error text holds.
    sendResponse(c, {200, "text/html; charset=utf-8", renderStatusPage(statusInputs()),
                     {{"Content-Security-Policy",
                       "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
                       "frame-ancestors 'none'"},
                      {"X-Content-Type-Options", "nosniff"},
                      {"Cache-Control", "no-store"}}});
  });
  server_->route("/api/v1/status", [this](mg_connection* c, const mg_request_info& r) {
    if (!allowOnly(c, r, "GET")) return;
    const auto inputs = statusInputs();
    // Uptime checkers that only look at the status code see "unhealthy" as 503.
    const int code = evaluate(inputs).status == OverallStatus::Unhealthy ? 503 : 200;
    sendResponse(c, {code, "application/json", renderStatusJson(inputs),
                     {{"Cache-Control", "no-store"}, {"X-Content-Type-Options", "nosniff"}}});
  });
}

void Exporter::handleMetrics(mg_connection* conn, const mg_request_info& request) const {
  if (!allowOnly(conn, request, "GET")) return;
  HttpResponse response;
  response.contentType = kTextContentType;
  response.body = renderMetrics();
  const char* acceptEncoding = mg_get_header(conn, "Accept-Encoding");
  if (acceptEncoding != nullptr && acceptsGzip(acceptEncoding)) {
    response.body = gzipCompress(response.body);
    response.headers.emplace_back("Content-Encoding", "gzip");
  }
  response.headers.emplace_back("Vary", "Accept-Encoding");
  sendResponse(conn, response);
}

void Exporter::handleReload(mg_connection* conn, const mg_request_info& request) {
  if (!allowOnly(conn, request, "POST")) return;
  const auto result = reload();
  if (result.ok) {
    sendResponse(conn, {200, "text/plain; charset=utf-8", result.message + "\n", {}});
  } else {
    sendError(conn, 500, "reload failed, running configuration kept:\n" + result.message);
  }
}

StatusInputs Exporter::statusInputs() const {
  StatusInputs in;
  std::shared_ptr<const Config> config;
  {
    std::shared_lock lock(stateMutex_);
    config = config_;
    in.collectors.reserve(runners_.size());
    for (const auto& runner : runners_) in.collectors.push_back(runner->health());
  }
  in.now = nowSeconds();
  in.configFile = config->source_file;
  in.lastReloadOk = lastReloadOk_;
  if (const auto& ingest = config->ingest; ingest.enabled) {
    in.ingest = "POST " + ingest.vitals_path + " and " + ingest.errors_path +
                (ingest.listen_address.empty() ? std::string(" on this listener")
                                               : " on its own listener, " + ingest.listen_address);
  }
  return in;
}

}  // namespace apphealth
